package io.grpc.testing.integration;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.childjvm.ChildJvm;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * The interop test server as its own process: serves grpc's TestService over TCP and shared
 * memory on an ephemeral port, prints {@code PORT <n>}, and exits when its stdin closes (so it
 * dies with the test JVM that started it, however that one ends).
 */
public final class ShmInteropServerMain {
  private ShmInteropServerMain() {}

  public static void main(String[] args) throws Exception {
    ScheduledExecutorService executor = Executors.newScheduledThreadPool(2);
    Server server = ShmServerBuilder.forPort(0)
        .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE)
        .addService(ServerInterceptors.intercept(
            new TestServiceImpl(executor), TestServiceImpl.interceptors()))
        .build()
        .start();
    ChildJvm.reportPortAndServe(server.getPort(), () -> {
      executor.shutdownNow();
      return server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    });
  }
}
