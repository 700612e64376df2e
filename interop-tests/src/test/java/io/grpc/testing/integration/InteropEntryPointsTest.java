package io.grpc.testing.integration;

import java.util.regex.Pattern;
import java.time.Duration;
import io.grpcshm.childjvm.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The interop entry points as grpc's interop matrix runs them: {@link ShmInteropServer} in its own
 * JVM, {@link ShmInteropClient} here with grpc's flags, every case over shared memory.
 */
class InteropEntryPointsTest {
  private static ChildJvm server;

  @BeforeAll
  static void startServer() throws Exception {
    // grpc's interop server announces itself as grpc's does.
    server = ChildJvm.of(ShmInteropServer.class).jvmOptions("-Xmx1g")
        .args("--port=0", "--use_tls=false", "--transport=auto")
        .portLine(Pattern.compile("Server started on port (\\d+)"))
        .startReady(Duration.ofSeconds(60));
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server != null) {
      server.terminate();
    }
  }

  @Test
  @Timeout(value = 10, unit = TimeUnit.MINUTES)
  void everyCaseOverSharedMemoryAgainstAServerInAnotherProcess() {
    Run run = client("--server_host=localhost", "--server_port=" + server.port(),
        "--use_tls=false", "--transport=shm", "--test_case=all");
    assertEquals(0, run.status, run.output);
    int expected = 0;
    for (TestCases c : TestCases.values()) {
      if (ShmInteropClient.UNSUPPORTED.containsKey(c)
          || ShmInteropClient.NOT_IN_ALL.containsKey(c)) {
        assertTrue(run.output.contains("Skipping " + c + ": "), run.output);
      } else {
        assertTrue(run.output.contains("PASS " + c + " ("), c + " did not pass:\n" + run.output);
        expected++;
      }
    }
    assertTrue(expected >= 24, run.output);
    assertTrue(run.output.contains("All tests passed."), run.output);
  }

  @Test
  @Timeout(value = 2, unit = TimeUnit.MINUTES)
  void theServerAlsoServesTcpForClientsOfOtherLanguages() {
    Run run = client("--server_port=" + server.port(), "--use_tls=false", "--transport=tcp",
        "--test_case=large_unary,ping_pong,custom_metadata");
    assertEquals(0, run.status, run.output);
  }

  @Test
  void aCaseThatFailsMakesTheExitStatusOne() {
    // A server that is not there: shared memory only, nothing listens on this port.
    Run run = client("--server_port=1", "--use_tls=false", "--transport=shm",
        "--test_case=empty_unary", "--case_timeout_seconds=60");
    assertEquals(1, run.status, run.output);
    assertTrue(run.output.contains("FAIL empty_unary"), run.output);
  }

  @Test
  void badCommandLinesAreRefusedWithStatusTwo() {
    assertEquals(2, client("--no_such_flag=1").status);
    assertEquals(2, client("--transport=udp").status);
    assertEquals(2, client("--test_case=oauth2_auth_token", "--use_tls=false").status);
    assertEquals(2, client("--transport=shm", "--use_tls=true").status);
  }

  private record Run(int status, String output) {}

  private static Run client(String... args) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    int status = ShmInteropClient.run(args, out);
    return new Run(status, bytes.toString(StandardCharsets.UTF_8));
  }
}
