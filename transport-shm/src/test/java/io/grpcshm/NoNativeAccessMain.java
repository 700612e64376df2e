package io.grpcshm;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.util.concurrent.TimeUnit;

/**
 * Run by {@link NativeAccessTest} in a JVM that denies native access: a grpc-shm server and
 * channels still work, over TCP. Prints the path an AUTO call took and what a SHM_ONLY call got.
 */
public final class NoNativeAccessMain {
  private NoNativeAccessMain() {}

  public static void main(String[] args) throws Exception {
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition()).build()
        .start();
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannel auto = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().intercept(capture).build();
    ManagedChannel shmOnly = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try {
      byte[] reply = ClientCalls.blockingUnaryCall(auto, EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), new byte[] {7});
      System.out.println("AUTO " + TransportPath.of(capture.last.get()) + " " + reply.length);
      try {
        ClientCalls.blockingUnaryCall(shmOnly, EchoService.UNARY,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), new byte[] {7});
        System.out.println("SHM_ONLY OK");
      } catch (StatusRuntimeException e) {
        System.out.println("SHM_ONLY " + e.getStatus().getCode() + " "
            + e.getStatus().getDescription());
      }
    } finally {
      auto.shutdownNow();
      shmOnly.shutdownNow();
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
