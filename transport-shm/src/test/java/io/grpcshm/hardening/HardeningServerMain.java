package io.grpcshm.hardening;

import io.grpc.Server;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.childjvm.ChildJvm;
import java.util.concurrent.TimeUnit;

/** Child-JVM server: the checksummed service; prints PORT n, exits when stdin closes. */
public final class HardeningServerMain {
  private HardeningServerMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    ChildJvm.reportPortAndServe(server.getPort(),
        () -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
  }
}
