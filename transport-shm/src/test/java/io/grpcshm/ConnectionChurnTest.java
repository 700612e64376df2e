package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.ClientCalls;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Many connect / call / disconnect cycles leave nothing behind on either side. */
class ConnectionChurnTest {
  private static final int CYCLES = Integer.getInteger("grpcshm.churnCycles", 300);

  @Test
  void connectCallDisconnectCyclesReturnToBaseline() throws Exception {
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition()).build().start();
    try {
      // One connection first, so lazily created shared resources (grpc's timer, executors) exist.
      cycle(server, 0);
      ResourceSnapshot baseline = ResourceSnapshot.settled();
      Runtime rt = Runtime.getRuntime();
      System.gc();
      long heapBefore = rt.totalMemory() - rt.freeMemory();
      for (int i = 1; i <= CYCLES; i++) {
        cycle(server, i);
      }
      ResourceSnapshot after = ResourceSnapshot.awaitReleased(baseline);
      // No more than before (the baseline may still hold what cycle 0 leaves lingering for a
      // while, such as an idle loop's thread, which is gone by now).
      assertTrue(after.shmMappings() <= baseline.shmMappings(),
          "mappings " + baseline + " -> " + after);
      assertTrue(after.shmThreads() <= baseline.shmThreads(),
          "threads " + baseline + " -> " + after);
      assertTrue(after.fds() <= baseline.fds() + 2, "fds " + baseline + " -> " + after);
      System.gc();
      long heapAfter = rt.totalMemory() - rt.freeMemory();
      assertTrue(heapAfter - heapBefore < 64L << 20,
          "heap grew by " + ((heapAfter - heapBefore) >> 20) + " MiB over " + CYCLES + " cycles");
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static void cycle(Server server, int i) throws InterruptedException {
    ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    try {
      byte[] payload = new byte[i % 2 == 0 ? 100 : 100_000];
      payload[0] = (byte) i;
      assertArrayEquals(payload, ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
          CallOptions.DEFAULT, payload));
    } finally {
      ch.shutdown();
      assertTrue(ch.awaitTermination(5, TimeUnit.SECONDS), "channel " + i + " terminated");
    }
  }
}
