package io.grpcshm.codec;

import io.grpc.Server;
import io.grpcshm.ShmServerBuilder;

/** Child-JVM server: the zero-copy blob service; prints PORT n, exits when stdin closes. */
public final class BlobServerMain {
  private BlobServerMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(256 << 20)
        .addService(ZeroCopyServices.rewrite(new BlobServiceImpl())).build().start();
    System.out.println("PORT " + server.getPort());
    System.out.flush();
    while (System.in.read() != -1) {
      // until the parent closes stdin or dies
    }
    server.shutdownNow();
    System.exit(0);
  }
}
