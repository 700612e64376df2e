package io.grpcshm;

import io.grpc.Server;
import io.grpcshm.childjvm.ChildJvm;
import java.util.concurrent.TimeUnit;

/** An echo server process for cross-process tests: prints PORT n, exits when stdin closes. */
public final class EchoServerMain {
  private EchoServerMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .maxInboundMessageSize(64 << 20)
        .addService(EchoService.definition())
        .build()
        .start();
    ChildJvm.reportPortAndServe(server.getPort(),
        () -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
  }
}
