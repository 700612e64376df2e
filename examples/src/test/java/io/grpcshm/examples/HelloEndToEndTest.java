package io.grpcshm.examples;

import io.grpcshm.childjvm.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** HelloServer in a child JVM, HelloClient's code in this one: a real cross-process call. */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class HelloEndToEndTest {
  private static ChildJvm server;
  private static String target;

  @BeforeAll
  static void startServer() throws Exception {
    server = ExitWithParent.startServer("hello-server", HelloServer.class, "0");
    target = "localhost:" + server.awaitPort(Duration.ofSeconds(60));
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server != null) {
      int exitCode = server.stop();
      assertFalse(server.isAlive());
      assertEquals(0, exitCode, "the server should exit by itself when its stdin closes");
    }
  }

  @Test
  void autoModeTakesSharedMemoryToTheOtherProcess() throws Exception {
    HelloClient.Greeting greeting = HelloClient.greet(target, "shm", TransportMode.AUTO);

    assertEquals("Hello shm", greeting.message());
    assertEquals(TransportPath.SHARED_MEMORY, greeting.path());
    assertEquals(server.pid(), greeting.serverPid());
  }

  @Test
  void tcpOnlyModeTakesTcp() throws Exception {
    HelloClient.Greeting greeting = HelloClient.greet(target, "tcp", TransportMode.TCP_ONLY);

    assertEquals("Hello tcp", greeting.message());
    assertEquals(TransportPath.TCP, greeting.path());
    assertEquals(server.pid(), greeting.serverPid());
  }
}
