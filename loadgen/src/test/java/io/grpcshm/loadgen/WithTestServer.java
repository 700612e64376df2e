package io.grpcshm.loadgen;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** Base of the test classes that call the in-test server: one server per class. */
abstract class WithTestServer {
  static TestServer server;

  @BeforeAll
  static void startTestServer() throws Exception {
    server = new TestServer();
  }

  @AfterAll
  static void stopTestServer() throws Exception {
    server.close();
  }
}
