package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.ClientCalls;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ShmSmokeTest {
  @Test
  void unaryOverSharedMemory() throws Exception {
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition()).build().start();
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().intercept(capture).build();
    try {
      for (int size : new int[] {0, 100, 20_000, 1 << 20, 3 << 20}) {
        byte[] req = new byte[size];
        new Random(size).nextBytes(req);
        byte[] resp = ClientCalls.blockingUnaryCall(channel, EchoService.UNARY,
            io.grpc.CallOptions.DEFAULT, req);
        assertArrayEquals(req, resp, "size " + size);
      }
      assertEquals(TransportPath.SHARED_MEMORY, TransportPath.of(capture.last.get()));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
