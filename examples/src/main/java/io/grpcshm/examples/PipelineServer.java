package io.grpcshm.examples;

import io.grpc.Server;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.codec.ZeroCopyServices;
import java.io.IOException;
import java.util.List;

/**
 * The pipeline's inference server. Usage: {@code PipelineServer [port]} (default 0: a free port).
 * Serves {@link InferenceService} over TCP and shared memory, with the zero-copy codec so that
 * tensors received over shared memory are read in place. {@link Pipeline} starts it in a child JVM.
 */
public final class PipelineServer {
  private PipelineServer() {}

  public static void main(String[] args) throws IOException, InterruptedException {
    List<String> rest = ExitWithParent.withoutFlag(args);
    int port = rest.isEmpty() ? 0 : Integer.parseInt(rest.get(0));
    Server server = start(port);
    System.out.println("PipelineServer (pid " + ProcessHandle.current().pid()
        + ") listening on port " + server.getPort() + " (TCP, and shared memory at "
        + ShmAddress.defaultRendezvous(server.getPort()) + ")");
    ExitWithParent.serveUntilStopped(server, args, "pipeline-server-shutdown");
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
