package io.grpcshm.hardening;

import io.grpc.Server;
import io.grpcshm.ShmServerBuilder;

/** Child-JVM server: the checksummed service; prints PORT n, exits when stdin closes. */
public final class HardeningServerMain {
  private HardeningServerMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    System.out.println("PORT " + server.getPort());
    System.out.flush();
    while (System.in.read() != -1) {
      // until the parent closes stdin or dies
    }
    server.shutdownNow();
    System.exit(0);
  }
}
