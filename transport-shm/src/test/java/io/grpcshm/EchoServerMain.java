package io.grpcshm;

import io.grpc.Server;

/** An echo server process for cross-process tests: prints PORT n, exits when stdin closes. */
public final class EchoServerMain {
  private EchoServerMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .maxInboundMessageSize(64 << 20)
        .addService(EchoService.definition())
        .build()
        .start();
    System.out.println("PORT " + server.getPort());
    System.out.flush();
    while (System.in.read() != -1) {
      // until the parent closes stdin or dies
    }
    server.shutdownNow();
    System.exit(0);
  }
}
