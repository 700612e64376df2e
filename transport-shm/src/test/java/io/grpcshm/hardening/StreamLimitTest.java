package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpcshm.Eventually;
import io.grpcshm.LogCapture;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.frame.FrameLayout;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code maxConcurrentCallsPerConnection}: a stream beyond the limit is refused with
 * RST_STREAM(UNAVAILABLE) before it reaches the gRPC layer (no call, no executor task, no
 * thread); the streams already open are unaffected, the connection stays, and a freed slot can
 * be used again. A flood of refusals writes at most one log line.
 */
class StreamLimitTest {
  private static final int LIMIT = 16;
  private static final int EXCESS = 400;
  private static final Logger TRANSPORT_LOG =
      Logger.getLogger("io.grpcshm.internal.transport.ShmServerTransport");

  private Hardening.Stats stats;
  private Server server;
  private final LogCapture capture = new LogCapture();

  @BeforeEach
  void start() throws Exception {
    TRANSPORT_LOG.addHandler(capture);
    stats = new Hardening.Stats();
    server = ShmServerBuilder.forPort(0).maxConcurrentCallsPerConnection(LIMIT)
        .addService(Hardening.service(stats)).build().start();
  }

  @AfterEach
  void stop() throws Exception {
    TRANSPORT_LOG.removeHandler(capture);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static void await(BooleanSupplier condition, String what) throws InterruptedException {
    if (!Eventually.holds(condition, 10)) {
      throw new AssertionError("timed out waiting for " + what);
    }
  }

  private static int id(int n) {
    return 2 * n + 1;
  }

  private void openHang(HostilePeer p, int streamId) {
    p.startCall(streamId, Hardening.HANG, Map.of());
    p.sendMessage(streamId, Hardening.message(streamId, 10), true);
  }

  @Test
  void streamsBeyondTheLimitAreRefusedOneByOne() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      for (int i = 0; i < LIMIT; i++) {
        openHang(p, id(i));
      }
      await(() -> stats.active.get() == LIMIT, LIMIT + " calls open");
      int threadsBefore = ManagementFactory.getThreadMXBean().getThreadCount();

      for (int i = LIMIT; i < LIMIT + EXCESS; i++) {
        if (i % 2 == 0) {
          openHang(p, id(i)); // with a message (and END_STREAM) the server must drop
        } else {
          p.startCall(id(i), Hardening.HANG, Map.of());
        }
      }
      List<HostilePeer.Frame> frames = p.readUntil(f -> f.stream()
          .filter(x -> x.type() == FrameLayout.TYPE_RST_STREAM).count() >= EXCESS, 10_000);
      for (int i = LIMIT; i < LIMIT + EXCESS; i++) {
        int streamId = id(i);
        HostilePeer.Frame rst = PerStreamErrorTest.only(frames, FrameLayout.TYPE_RST_STREAM,
            streamId);
        Status st = PerStreamErrorTest.rstStatus(rst);
        assertEquals(Status.Code.UNAVAILABLE, st.getCode(), st.toString());
        assertTrue(st.getDescription().contains("limit " + LIMIT), st.toString());
      }
      assertEquals(EXCESS, frames.size(), "nothing but one RST_STREAM per refused stream: "
          + PerStreamErrorTest.describe(frames));
      assertEquals(LIMIT, stats.active.get(), "the open calls are unaffected");
      assertTrue(stats.cancellations.isEmpty(), "no open call was cancelled");
      int threadsAfter = ManagementFactory.getThreadMXBean().getThreadCount();
      assertTrue(threadsAfter <= threadsBefore + 4,
          "threads " + threadsBefore + " -> " + threadsAfter + " for " + EXCESS + " refusals");
      assertFalse(p.hungUpWithin(100), "the connection stays open");

      // The client cancels one call: its slot is free for a new stream, which completes.
      p.write(FrameLayout.TYPE_RST_STREAM, 0, id(0), cancelled());
      await(() -> stats.cancellations.size() == 1, "the cancelled call ends");
      int next = id(LIMIT + EXCESS);
      byte[] request = Hardening.message(next, 100);
      p.startCall(next, Hardening.UNARY, Map.of());
      p.sendMessage(next, request, true);
      PerStreamErrorTest.assertEchoed(
          p.readUntil(f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, next), 10_000),
          next, request);

      // The other calls were alive all along: they end when cancelled, not before.
      for (int i = 1; i < LIMIT; i++) {
        p.write(FrameLayout.TYPE_RST_STREAM, 0, id(i), cancelled());
      }
      await(() -> stats.cancellations.size() == LIMIT, "every open call ends by its cancel");
      assertEquals(0, stats.active.get());
    }
    List<LogRecord> lines = capture.records().stream()
        .filter(r -> r.getMessage().contains("too many concurrent calls")).toList();
    assertTrue(lines.size() <= 1, EXCESS + " refusals logged " + lines.size() + " lines");
    for (LogRecord r : lines) {
      assertNull(r.getThrown(), "no stack trace");
    }
  }

  private static byte[] cancelled() {
    byte[] d = "client cancelled".getBytes(StandardCharsets.UTF_8);
    return HostilePeer.le(8 + d.length).putInt(Status.Code.CANCELLED.value()).putInt(d.length)
        .put(d).array();
  }

  /** What a grpc client sees: the call beyond the limit fails at once with UNAVAILABLE. */
  @Test
  void grpcClientSeesUnavailableBeyondTheLimit() throws Exception {
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try {
      List<Calls.Watched> open = new ArrayList<>();
      for (int i = 0; i < LIMIT; i++) {
        open.add(Calls.start(channel, Hardening.HANG, CallOptions.DEFAULT,
            Hardening.message(i, 10), true));
      }
      await(() -> stats.active.get() == LIMIT, LIMIT + " calls open");
      Calls.Watched refused = Calls.start(channel, Hardening.UNARY, CallOptions.DEFAULT,
          Hardening.message(0, 10), true);
      assertTrue(refused.closed.await(10, TimeUnit.SECONDS), "the extra call ends");
      assertEquals(Status.Code.UNAVAILABLE, refused.status.get().getCode(), refused.toString());
      assertTrue(refused.status.get().getDescription().contains("maxConcurrentCallsPerConnection"),
          refused.toString());
      for (Calls.Watched w : open) {
        assertEquals(1, w.closed.getCount(), "an open call is unaffected: " + w);
      }
      open.get(0).call.cancel("done", null);
      await(() -> stats.active.get() == LIMIT - 1, "a slot frees");
      Calls.echo(channel, 100);
      for (Calls.Watched w : open) {
        w.call.cancel("done", null);
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
