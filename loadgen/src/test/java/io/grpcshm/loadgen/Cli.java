package io.grpcshm.loadgen;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** Runs grpc-load in this JVM and keeps what it printed. */
record Cli(int exitCode, String out, String err, CommandLine commandLine) {
  static Cli run(String... args) {
    return runWithStdin(null, args);
  }

  /** As {@link #run}, with {@code stdin} as what -d @ and -b read. */
  static Cli runWithStdin(byte[] stdin, String... args) {
    CommandLine cl = GrpcLoad.commandLine();
    if (stdin != null) {
      ((GrpcLoad) cl.getCommand()).stdin = new java.io.ByteArrayInputStream(stdin);
    }
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    int code = cl.execute(args);
    return new Cli(code, out.toString(), err.toString(), cl);
  }

  GrpcLoad load() {
    return (GrpcLoad) commandLine.getCommand();
  }
}
