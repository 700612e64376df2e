package io.grpcshm.loadgen;

import java.io.PrintWriter;
import java.io.StringWriter;
import picocli.CommandLine;

/** Runs grpc-load in this JVM and keeps what it printed. */
record Cli(int exitCode, String out, String err, CommandLine commandLine) {
  static Cli run(String... args) {
    CommandLine cl = GrpcLoad.commandLine();
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
