package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.ClientCalls;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A connection that carried large messages and then idles gives its shared memory back (pool
 * beyond its first MiB, idle extra segments), on both sides, after the configured delay; the next
 * large message still arrives intact.
 */
class IdleMemoryTrimTest {
  static long shmemMiB() throws Exception {
    for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (l.startsWith("RssShmem:")) {
        return Long.parseLong(l.replaceAll("[^0-9]", "")) >> 10;
      }
    }
    throw new IllegalStateException("no RssShmem");
  }

  /** RssShmem once earlier tests' connections have finished closing (stable for 600 ms). */
  static long settledShmemMiB() throws Exception {
    long last = shmemMiB();
    int stable = 0;
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
    while (stable < 3 && System.nanoTime() < deadline) {
      Thread.sleep(200);
      long now = shmemMiB();
      stable = Math.abs(now - last) <= 2 ? stable + 1 : 0;
      last = now;
    }
    return last;
  }

  static byte[] call(ManagedChannel ch, int size, long seed) {
    byte[] req = new byte[size];
    new Random(seed).nextBytes(req);
    byte[] resp = ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
        CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), req);
    assertArrayEquals(req, resp, size + " bytes echoed");
    return resp;
  }

  @Test
  void idleConnectionGivesBackItsMemoryOnBothSides() throws Exception {
    // Trimming starts after this long without a frame either way. A large call on a busy
    // machine can go that long between frames (page faults while it copies), and a trim during
    // the calls would hide the memory they made resident, so not 1 s.
    Duration trim = Duration.ofSeconds(3);
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .idleMemoryTrim(trim).addService(EchoService.definition()).build().start();
    ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).maxInboundMessageSize(64 << 20)
        .idleMemoryTrim(trim).build();
    try {
      long before = settledShmemMiB();
      call(ch, 48 << 20, 1); // extra segments, both directions
      call(ch, 8 << 20, 2); // the pools, both directions
      for (int i = 0; i < 20; i++) {
        call(ch, 100, 10 + i); // small blocking calls: their reply pages are kept for the next
      }
      long busy = shmemMiB();
      // Each page is mapped by both ends (same process here): 2 x (2 x 48 + 2 x 8) MiB.
      assertTrue(busy - before >= 150, "large messages made memory resident: " + before
          + " -> " + busy + " MiB");
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
      long now = busy;
      while (now - before > 16 && System.nanoTime() < deadline) {
        Thread.sleep(100);
        now = shmemMiB();
      }
      assertTrue(now - before <= 16, "idle connection kept " + (now - before)
          + " MiB of shared memory (busy: " + (busy - before) + " MiB)");
      call(ch, 48 << 20, 3); // trimmed memory is usable again
      call(ch, 8 << 20, 4);
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
