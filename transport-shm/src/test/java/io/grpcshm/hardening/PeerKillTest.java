package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpcshm.Eventually;
import io.grpcshm.ResourceSnapshot;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * kill -9 of either peer in the middle of every call type and of a large transfer: the survivor
 * fails every affected call with UNAVAILABLE within 1 s, keeps serving its other connections and
 * returns to its resource baseline. {@code -Dgrpcshm.hardening.transferMiB} sets the transfer
 * (CI 256 MiB; the documented long run uses 4096).
 */
class PeerKillTest {
  static final long TRANSFER = Long.getLong("grpcshm.hardening.transferMiB", 256) << 20;
  static final int CHUNK = 4 << 20;

  static ManagedChannel channel(int port) {
    return ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .maxInboundMessageSize(64 << 20).transportMode(TransportMode.SHM_ONLY).build();
  }

  @Test
  void killedServerFailsEveryCallWithinOneSecond() throws Exception {
    Server other = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    ManagedChannel otherChannel = channel(other.getPort());
    ChildJvm server = null;
    ManagedChannel channel = null;
    try {
      Calls.echo(otherChannel, 1 << 20);
      ResourceSnapshot baseline = ResourceSnapshot.settled();
      server = ChildJvm.start(HardeningServerMain.class);
      channel = channel(server.port());
      Calls.echo(channel, 1 << 20);
      List<Calls.Watched> calls = new ArrayList<>();
      calls.add(Calls.start(channel, Hardening.HANG, CallOptions.DEFAULT,
          Hardening.message(0, 10), true));
      Calls.Watched serverStream = Calls.start(channel, Hardening.SERVER_STREAM,
          CallOptions.DEFAULT, Hardening.streamRequest(-1, 64 << 10), true);
      calls.add(serverStream);
      Calls.Watched bidi = Calls.start(channel, Hardening.BIDI, CallOptions.DEFAULT,
          Hardening.message(0, 100_000), false);
      calls.add(bidi);
      Calls.Upload clientStream = Calls.Upload.start(channel, CallOptions.DEFAULT, 1024,
          Long.MAX_VALUE);
      calls.add(clientStream);
      // Both transfers are open-ended so that neither can finish before the kill however fast
      // the machine is; the kill comes once each has moved at least TRANSFER / 2 bytes.
      Calls.Upload upload = Calls.Upload.start(channel, CallOptions.DEFAULT, CHUNK,
          Long.MAX_VALUE);
      calls.add(upload);
      Calls.Watched download = Calls.start(channel, Hardening.SERVER_STREAM, CallOptions.DEFAULT,
          Hardening.streamRequest(-1, CHUNK), true);
      calls.add(download);
      assertTrue(serverStream.firstMessage.await(10, TimeUnit.SECONDS), "server stream flows");
      assertTrue(bidi.firstMessage.await(10, TimeUnit.SECONDS), "bidi flows");
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
      while ((upload.sentBytes.get() < TRANSFER / 2
          || download.receivedBytes.get() < TRANSFER / 2) && System.nanoTime() < until) {
        Thread.sleep(5);
      }
      assertTrue(upload.sentBytes.get() >= TRANSFER / 2, "upload reached half: " + upload.sentBytes);
      assertTrue(download.receivedBytes.get() >= TRANSFER / 2, "download reached half");
      for (Calls.Watched w : calls) {
        assertEquals(1, w.closed.getCount(), "still open before the kill: " + w);
      }

      long killedAt = System.nanoTime();
      server.kill();
      for (Calls.Watched w : calls) {
        assertTrue(w.closed.await(5, TimeUnit.SECONDS), "call failed after the kill: " + w.name);
        assertEquals(Status.Code.UNAVAILABLE, w.status.get().getCode(), w.toString());
        long ms = w.closedMillisAfter(killedAt);
        assertTrue(ms < 1000, w.name + " failed " + ms + " ms after the kill");
        assertEquals(0, w.corrupt.get(), w.name + " received corrupt messages");
      }
      // The process keeps serving its other connection.
      Calls.echo(otherChannel, 4 << 20);
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      ResourceSnapshot after = ResourceSnapshot.awaitReleased(baseline);
      assertTrue(after.shmMappings() <= baseline.shmMappings(),
          "mappings released: " + baseline + " -> " + after);
      assertTrue(after.shmThreads() <= baseline.shmThreads(),
          "threads exited: " + baseline + " -> " + after);
      assertTrue(after.fds() <= baseline.fds(), "fds released: " + baseline + " -> " + after);
    } finally {
      if (channel != null) {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      if (server != null) {
        server.close();
      }
      otherChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      other.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void killedClientReleasesEverythingOnTheServer() throws Exception {
    Hardening.Stats stats = new Hardening.Stats();
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(Hardening.service(stats)).build().start();
    ExecutorService background = Executors.newSingleThreadExecutor();
    try {
      ManagedChannel warm = channel(server.getPort());
      Calls.echo(warm, 1 << 20);
      warm.shutdown().awaitTermination(5, TimeUnit.SECONDS);
      Thread.sleep(200);
      ResourceSnapshot baseline = ResourceSnapshot.awaitBaseline(ResourceSnapshot.take(), 0);
      java.util.Set<String> mappedBefore = ResourceSnapshot.shmMappingIds();

      ChildJvm client = ChildJvm.start(HardeningClientMain.class, "-Xmx512m",
          Integer.toString(server.getPort()), Long.toString(TRANSFER >> 20));
      ManagedChannel honest = channel(server.getPort());
      AtomicBoolean stop = new AtomicBoolean();
      AtomicLong honestCalls = new AtomicLong();
      try {
        assertTrue(stats.active.get() >= 4, "client's calls in flight: " + stats.active);
        java.util.Set<String> mapped = ResourceSnapshot.shmMappingIds();
        mapped.removeAll(mappedBefore);
        assertTrue(!mapped.isEmpty(), "the child's connection is mapped");
        // Checksummed traffic on another connection throughout the kill.
        Future<?> traffic = background.submit(() -> {
          int i = 0;
          while (!stop.get()) {
            Calls.echo(honest, (i++ % 3 == 0) ? 1 << 20 : 1000);
            honestCalls.incrementAndGet();
          }
          return null;
        });
        int cancelledBefore = stats.cancellations.size();
        long killedAt = System.nanoTime();
        client.kill();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (stats.active.get() > 0 && System.nanoTime() < until) {
          Thread.sleep(5);
        }
        assertEquals(0, stats.active.get(), "server calls of the dead client still active");
        List<long[]> cancels = new ArrayList<>(stats.cancellations);
        assertTrue(cancels.size() - cancelledBefore >= 4, "cancellations: " + cancels.size());
        for (long[] c : cancels.subList(cancelledBefore, cancels.size())) {
          long ms = TimeUnit.NANOSECONDS.toMillis(c[0] - killedAt);
          assertTrue(ms < 1000, "server call cancelled " + ms + " ms after the kill");
          assertTrue(c[1] == -1 || c[1] == Status.Code.UNAVAILABLE.value()
              || c[1] == Status.Code.CANCELLED.value(), "cancellation code " + c[1]);
        }
        long callsAtKill = honestCalls.get();
        Eventually.holds(() -> honestCalls.get() > callsAtKill, 30);
        stop.set(true);
        traffic.get(30, TimeUnit.SECONDS); // rethrows any failed or corrupt call
        assertTrue(honestCalls.get() > callsAtKill, "other client kept working");
        assertEquals(0, stats.corrupt.get(), "server saw corrupt messages");
      } finally {
        stop.set(true);
        honest.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        client.close();
      }
      ResourceSnapshot after = ResourceSnapshot.awaitReleased(baseline);
      assertTrue(after.shmMappings() <= baseline.shmMappings(),
          "mappings released: " + baseline + " -> " + after);
      assertTrue(after.shmThreads() <= baseline.shmThreads(),
          "threads exited: " + baseline + " -> " + after);
      assertTrue(after.fds() <= baseline.fds(), "fds released: " + baseline + " -> " + after);
    } finally {
      background.shutdownNow();
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
