package io.grpcshm.examples;

import io.grpc.Server;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmServerBuilder;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The hello-world server. Usage: {@code HelloServer [port]} (default 50051; 0 picks a free port).
 * It answers stock grpc clients over TCP on the port, and co-located grpc-shm clients over shared
 * memory.
 */
public final class HelloServer {
  private HelloServer() {}

  public static void main(String[] args) throws IOException, InterruptedException {
    List<String> rest = ExitWithParent.withoutFlag(args);
    int port = rest.isEmpty() ? 50051 : Integer.parseInt(rest.get(0));
    Server server = start(port);
    System.out.println("HelloServer listening on port " + server.getPort()
        + " (TCP, and shared memory at " + ShmAddress.defaultRendezvous(server.getPort()) + ")");
    Runnable stop = () -> {
      try {
        server.shutdown().awaitTermination(3, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    };
    Runtime.getRuntime().addShutdownHook(new Thread(stop, "hello-server-shutdown"));
    if (ExitWithParent.requested(args)) {
      ExitWithParent.exitWhenStdinCloses(stop);
    }
    server.awaitTermination();
  }

  static Server start(int port) throws IOException {
    // Stock grpc:  ServerBuilder.forPort(port)
    return ShmServerBuilder.forPort(port)
        .addService(new GreeterService())
        .build()
        .start();
  }
}
