package io.grpcshm.examples;

import io.grpc.Server;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.codec.ZeroCopyServices;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

/**
 * The pipeline's inference server. Usage: {@code PipelineServer [port]} (default 0: a free port).
 * Serves {@link InferenceService} over TCP and shared memory, with the zero-copy codec so that
 * tensors received over shared memory are read in place. {@link Pipeline} starts it in a child JVM.
 */
@Command(name = "PipelineServer", mixinStandardHelpOptions = true,
    description = "The pipeline's inference server (TCP and shared memory).")
public final class PipelineServer implements Callable<Integer> {
  @Parameters(index = "0", defaultValue = "0", paramLabel = "PORT",
      description = "TCP port (0: a free port)")
  int port;

  @Mixin ExitWithParent.Flag exitWithParent;

  PipelineServer() {}

  public static void main(String[] args) {
    Mains.run(new PipelineServer(), args);
  }


  @Override
  public Integer call() throws IOException, InterruptedException {
    Server server = start(port);
    System.out.println("PipelineServer (pid " + ProcessHandle.current().pid()
        + ") listening on port " + server.getPort() + " (TCP, and shared memory at "
        + ShmAddress.defaultRendezvous(server.getPort()) + ")");
    ExitWithParent.serveUntilStopped(server, exitWithParent, "pipeline-server-shutdown");
    return 0;
  }


  static Server start(int port) throws IOException {
    return ShmServerBuilder.forPort(port)
        // Every protobuf marshaller of the service swapped for the zero-copy codec.
        .addService(ZeroCopyServices.rewrite(new InferenceService()))
        .maxInboundMessageSize(InferenceService.MAX_MESSAGE_BYTES)
        .build()
        .start();
  }
}
