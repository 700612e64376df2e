package io.grpcshm.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

/**
 * The examples' command lines: every documented one (README, docs, the pom's exec arguments, the
 * child JVMs the benchmarks start) still parses, {@code --help} exits with 0 and a bad argument
 * with 2 and a message. Parsing only: nothing is started.
 */
class CommandLinesTest {
  private record Main(String name, Supplier<Object> command, List<List<String>> documented,
      List<String> bad) {
    @Override
    public String toString() {
      return name;
    }
  }

  static List<Main> mains() {
    return List.of(
        new Main("EchoBenchmark", EchoBenchmark::new, List.of(List.of(),
            List.of("--rounds", "40", "--large-calls", "10"),
            List.of("--warmup-rounds", "2", "--small-calls", "5", "--small-bytes", "100",
                "--large-bytes", "1048576")), List.of("--rounds", "many")),
        new Main("ProtoBenchmark", ProtoBenchmark::new, List.of(List.of(),
            List.of("--rounds", "16", "--warmup-rounds", "4", "--calls", "4", "--mover-sweep",
                "0"),
            List.of("--rounds", "16", "--warmup-rounds", "4", "--calls", "4", "--mover-sweep",
                "0", "--heap-copy-stack", "1")), List.of("--calls")),
        new Main("small-call-benchmark", SmallCallBenchmark::new, List.of(List.of(),
            List.of("--rounds", "3", "--seconds", "4")), List.of("--nope")),
        new Main("Pipeline", Pipeline::new, List.of(List.of(),
            List.of("--sizes-mb", "20,120", "--calls", "3"),
            List.of("--target", "localhost:50052", "--warmup-seconds", "0", "--stream-batches",
                "0")), List.of("--calls", "x")),
        new Main("Demo", Demo::new, List.of(List.of()), List.of("extra")),
        new Main("EchoServer", EchoServer::new, List.of(List.of("shm"),
            List.of("shm-zerocopy", ExitWithParent.FLAG),
            List.of("netty-uds", "7", ExitWithParent.FLAG)), List.of("shm", "port")),
        new Main("HelloServer", HelloServer::new, List.of(List.of(), List.of("50051"),
            List.of("0", ExitWithParent.FLAG)), List.of("1", "2")),
        new Main("PipelineServer", PipelineServer::new, List.of(List.of("50052"),
            List.of("0", ExitWithParent.FLAG)), List.of("--port", "1")),
        new Main("HelloClient", HelloClient::new, List.of(List.of(),
            List.of("localhost:50051", "world", "AUTO"),
            List.of("localhost:50051", "world", "TCP_ONLY")),
            List.of("localhost:1", "x", "SOMETIMES")));
  }

  static List<Arguments> documentedLines() {
    return mains().stream().flatMap(m -> m.documented().stream().map(l -> Arguments.of(m, l)))
        .toList();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("documentedLines")
  void documentedCommandLinesParse(Main main, List<String> line) {
    new CommandLine(main.command().get()).parseArgs(line.toArray(String[]::new));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("mains")
  void helpExitsWithZero(Main main) {
    StringWriter out = new StringWriter();
    int code = new CommandLine(main.command().get()).setOut(new PrintWriter(out))
        .execute("--help");
    assertEquals(0, code);
    assertTrue(out.toString().contains("Usage: " + main.name()), out.toString());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("mains")
  void badArgumentsExitWithTwoAndSayWhy(Main main) {
    StringWriter err = new StringWriter();
    int code = new CommandLine(main.command().get()).setErr(new PrintWriter(err))
        .execute(main.bad().toArray(String[]::new));
    assertEquals(2, code, err.toString());
    assertTrue(err.toString().contains("Usage: " + main.name()), err.toString());
  }

  @org.junit.jupiter.api.Test
  void checksInsideTheCommandAlsoExitWithTwo() {
    StringWriter err = new StringWriter();
    int code = new CommandLine(new EchoServer()).setErr(new PrintWriter(err))
        .execute("tcp");
    assertEquals(2, code);
    assertTrue(err.toString().contains("STACK must be one of"), err.toString());
    err = new StringWriter();
    code = new CommandLine(new Pipeline()).setErr(new PrintWriter(err))
        .execute("--sizes-mb", "300");
    assertEquals(2, code);
    assertTrue(err.toString().contains("--sizes-mb values must be in"), err.toString());
    err = new StringWriter();
    code = new CommandLine(new SmallCallBenchmark()).setErr(new PrintWriter(err))
        .execute("--workloads", "nope", "--transports", "inproc");
    assertEquals(2, code);
    assertTrue(err.toString().contains("unknown workload nope"), err.toString());
    err = new StringWriter();
    code = new CommandLine(new SmallCallBenchmark()).setErr(new PrintWriter(err))
        .execute("--connect-warmup", "-1", "--transports", "inproc");
    assertEquals(2, code);
    assertTrue(err.toString().contains("--connect-warmup"), err.toString());
    err = new StringWriter();
    code = new CommandLine(new SmallCallBenchmark()).setErr(new PrintWriter(err))
        .execute("--shm-b", "-Dio.grpcshm.relay=false", "--transports", "inproc");
    assertEquals(2, code);
    assertTrue(err.toString().contains("--shm-b needs"), err.toString());
  }
}
