package io.grpcshm.codec;

import io.grpc.Server;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.childjvm.ChildJvm;
import java.util.concurrent.TimeUnit;

/** Child-JVM server: the zero-copy blob service; prints PORT n, exits when stdin closes. */
public final class BlobServerMain {
  private BlobServerMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(256 << 20)
        .addService(ZeroCopyServices.rewrite(new BlobServiceImpl())).build().start();
    ChildJvm.reportPortAndServe(server.getPort(),
        () -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
  }
}
