package io.grpcshm;

import io.grpcshm.childjvm.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** kill -9 of a server process: the client fails fast and releases everything. */
class PeerDeathTest {
  @Test
  void killedServerFailsCallsWithinOneSecondAndLeaksNothing() throws Exception {
    ResourceSnapshot baseline = ResourceSnapshot.settled();
    java.util.Set<String> mappedBefore = ResourceSnapshot.shmMappingIds();
    ChildJvm server = ChildJvm.start(EchoServerMain.class);
    ManagedChannel channel = null;
    try {
      channel = ShmChannelBuilder.forAddress("localhost", server.port()).usePlaintext()
          .transportMode(TransportMode.SHM_ONLY).build();
      // A working connection, with payload in flight in both directions' pools.
      byte[] big = new byte[4 << 20];
      assertArrayEquals(big, ClientCalls.blockingUnaryCall(channel, EchoService.UNARY,
          CallOptions.DEFAULT, big));
      java.util.Set<String> mapped = ResourceSnapshot.shmMappingIds();
      mapped.removeAll(mappedBefore);
      assertTrue(!mapped.isEmpty(), "region mapped: " + ResourceSnapshot.take());

      // A long-lived bidi stream that is open when the server dies.
      ClientCall<byte[], byte[]> call = channel.newCall(EchoService.BIDI, CallOptions.DEFAULT);
      CountDownLatch closed = new CountDownLatch(1);
      AtomicReference<Status> status = new AtomicReference<>();
      AtomicLong closedAt = new AtomicLong();
      CountDownLatch firstEcho = new CountDownLatch(1);
      call.start(new ClientCall.Listener<>() {
        @Override
        public void onMessage(byte[] message) {
          firstEcho.countDown();
        }

        @Override
        public void onClose(Status s, Metadata trailers) {
          closedAt.set(System.nanoTime());
          status.set(s);
          closed.countDown();
        }
      }, new Metadata());
      call.request(Integer.MAX_VALUE);
      call.sendMessage(new byte[] {1});
      assertTrue(firstEcho.await(10, TimeUnit.SECONDS));

      long killedAt = System.nanoTime();
      server.kill();
      assertTrue(closed.await(5, TimeUnit.SECONDS), "stream failed after the kill");
      assertEquals(Status.Code.UNAVAILABLE, status.get().getCode(), status.get().toString());
      long millis = TimeUnit.NANOSECONDS.toMillis(closedAt.get() - killedAt);
      assertTrue(millis < 1000, "failed after " + millis + " ms");
    } finally {
      if (channel != null) {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      server.close();
    }
    ResourceSnapshot after = ResourceSnapshot.awaitReleased(baseline);
    assertTrue(after.shmMappings() <= baseline.shmMappings(),
          "mappings released: " + baseline + " -> " + after);
    assertTrue(after.shmThreads() <= baseline.shmThreads(),
        "connection threads exited: " + baseline + " -> " + after);
    assertTrue(after.fds() <= baseline.fds(), "fds released: " + baseline + " -> " + after);
  }
}
