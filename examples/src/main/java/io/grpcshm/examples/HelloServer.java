package io.grpcshm.examples;

import io.grpc.Server;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmServerBuilder;
import java.io.IOException;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * The hello-world server. Usage: {@code HelloServer [port]} (default 50051; 0 picks a free port).
 * It answers stock grpc clients over TCP on the port, and co-located grpc-shm clients over shared
 * memory.
 */
@Command(name = "HelloServer", mixinStandardHelpOptions = true,
    description = "The hello-world server: TCP, and shared memory for co-located clients.")
public final class HelloServer implements Callable<Integer> {
  @Parameters(index = "0", defaultValue = "50051", paramLabel = "PORT",
      description = "TCP port (${DEFAULT-VALUE}; 0: a free port)")
  int port;

  @Mixin ExitWithParent.Flag exitWithParent;

  HelloServer() {}

  public static void main(String[] args) {
    Mains.run(new HelloServer(), args);
  }


  @Override
  public Integer call() throws IOException, InterruptedException {
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
    if (exitWithParent.requested) {
      ExitWithParent.exitWhenStdinCloses(stop);
    }
    server.awaitTermination();
    return 0;
  }

  static Server start(int port) throws IOException {
    // Stock grpc:  ServerBuilder.forPort(port)
    return ShmServerBuilder.forPort(port)
        .addService(new GreeterService())
        .build()
        .start();
  }
}
