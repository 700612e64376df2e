package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpcshm.LogCapture;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.MailboxLayout;
import io.grpcshm.internal.ring.RingDescriptor;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Hostile peers that pass the handshake and then break the ring and frame rules, while an honest
 * client runs checksummed traffic (unary and bidi) on another connection to the same server:
 * only the hostile connection dies, with INTERNAL and a message that says why; the honest
 * traffic sees no error, no corruption and no stall.
 */
class HostileConnectionTest {
  enum Attack {
    GARBAGE_RECORDS,
    LYING_RECORD_LENGTH,
    BLOCK_CROSSES_POOL_END,
    NEGATIVE_BLOCK_OFFSET,
    HUGE_BLOCK_LENGTH,
    DOUBLE_RELEASE,
    TRAILERS_FROM_CLIENT
  }

  private static final Logger CONNECTION_LOG =
      Logger.getLogger("io.grpcshm.internal.transport.ShmConnection");

  private Hardening.Stats stats;
  private Server server;
  private ManagedChannel honest;
  private ExecutorService traffic;
  private final AtomicBoolean stop = new AtomicBoolean();
  private final AtomicLong honestCalls = new AtomicLong();
  private final AtomicLong slowestHonestMillis = new AtomicLong();
  private final List<Future<?>> trafficTasks = new ArrayList<>();
  private final LogCapture capture = new LogCapture();

  @BeforeEach
  void start() throws Exception {
    // Every close is logged at FINE with its status (WARNINGs are rate-limited).
    CONNECTION_LOG.setLevel(Level.FINE);
    CONNECTION_LOG.addHandler(capture);
    stats = new Hardening.Stats();
    server = ShmServerBuilder.forPort(0).addService(Hardening.service(stats)).build().start();
    honest = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    Calls.echo(honest, 1000);
    traffic = Executors.newFixedThreadPool(2);
    // Unary echoes of 0 B .. 512 KiB (inline and block payloads), checksummed.
    trafficTasks.add(traffic.submit(() -> {
      while (!stop.get()) {
        long t0 = System.nanoTime();
        Calls.echo(honest, ThreadLocalRandom.current().nextInt(2) == 0
            ? ThreadLocalRandom.current().nextInt(1000)
            : ThreadLocalRandom.current().nextInt(512 << 10));
        slowestHonestMillis.accumulateAndGet(
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), Math::max);
        honestCalls.incrementAndGet();
      }
      return null;
    }));
    // One long bidi stream, checksummed, message by message.
    trafficTasks.add(traffic.submit(() -> {
      Calls.Watched bidi = Calls.start(honest, Hardening.BIDI, CallOptions.DEFAULT, null, false);
      long sent = 0;
      while (!stop.get()) {
        bidi.call.sendMessage(Hardening.message(sent++, (int) (sent % 5) * 40_000));
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (bidi.received.get() < sent && System.nanoTime() < until
            && bidi.closed.getCount() > 0) {
          Thread.sleep(1);
        }
        if (bidi.received.get() < sent) {
          throw new AssertionError("bidi echo lost or late: " + bidi);
        }
      }
      bidi.call.halfClose();
      assertTrue(bidi.closed.await(10, TimeUnit.SECONDS), "bidi ends");
      assertEquals(Status.Code.OK, bidi.status.get().getCode(), bidi.toString());
      assertEquals(0, bidi.corrupt.get(), "bidi corrupt messages");
      return null;
    }));
  }

  @AfterEach
  void stop() throws Exception {
    stop.set(true);
    try {
      for (Future<?> f : trafficTasks) {
        f.get(30, TimeUnit.SECONDS); // rethrows any failure of the honest traffic
      }
      assertTrue(honestCalls.get() > 0, "honest traffic made progress");
      assertTrue(slowestHonestMillis.get() < 5000,
          "an honest call took " + slowestHonestMillis + " ms");
      assertEquals(0, stats.corrupt.get(), "server saw corrupt honest messages");
    } finally {
      CONNECTION_LOG.removeHandler(capture);
      CONNECTION_LOG.setLevel(null);
      traffic.shutdownNow();
      honest.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private long callsNow() throws InterruptedException {
    long before = honestCalls.get();
    long until = System.currentTimeMillis() + 10_000;
    while (honestCalls.get() < before + 3 && System.currentTimeMillis() < until) {
      Thread.sleep(5);
    }
    return honestCalls.get() - before;
  }

  private static byte[] block(int segmentId, int length, long offset) {
    return HostilePeer.le(16).putInt(segmentId).putInt(length).putLong(offset).array();
  }

  @ParameterizedTest
  @EnumSource(Attack.class)
  void onlyTheHostileConnectionDiesWithInternal(Attack attack) throws Exception {
    assertTrue(callsNow() >= 3, "honest traffic runs before the attack");
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      switch (attack) {
        case GARBAGE_RECORDS -> {
          byte[] junk = new byte[4096];
          new Random(attack.ordinal()).nextBytes(junk);
          MemorySegment.copy(junk, 0, p.tx.data(), ValueLayout.JAVA_BYTE, 0, junk.length);
          p.txRingHeader.set(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET, 4096L);
          p.wake();
        }
        case LYING_RECORD_LENGTH -> {
          // A record that claims 64 KiB when 16 bytes were published.
          MemorySegment d = p.tx.data();
          d.set(ValueLayout.JAVA_INT, 0, 65536);
          d.set(ValueLayout.JAVA_BYTE, FrameLayout.TYPE_OFFSET, (byte) FrameLayout.TYPE_PING);
          p.txRingHeader.set(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET, 16L);
          p.wake();
        }
        case BLOCK_CROSSES_POOL_END -> {
          p.startCall(1, Hardening.UNARY, Map.of());
          p.write(FrameLayout.TYPE_DATA_BLOCK, 0, 1,
              block(0, 8192, p.layout.poolSize() - 4096));
        }
        case NEGATIVE_BLOCK_OFFSET -> {
          p.startCall(1, Hardening.UNARY, Map.of());
          p.write(FrameLayout.TYPE_DATA_BLOCK, 0, 1, block(0, 100, -4096));
        }
        case HUGE_BLOCK_LENGTH -> {
          p.startCall(1, Hardening.UNARY, Map.of());
          p.write(FrameLayout.TYPE_DATA_BLOCK, 0, 1, block(0, 0x8000_1000, 0));
        }
        case DOUBLE_RELEASE -> {
          // A valid request whose 256 KiB answer the server lends us as a DATA_BLOCK ...
          p.startCall(1, Hardening.SERVER_STREAM, Map.of());
          p.sendMessage(1, Hardening.streamRequest(1, 256 << 10), true);
          List<HostilePeer.Frame> frames = p.readUntil(
              f -> HostilePeer.has(f, FrameLayout.TYPE_DATA_BLOCK, 1), 5000);
          HostilePeer.Frame data = frames.stream()
              .filter(f -> f.type() == FrameLayout.TYPE_DATA_BLOCK).findFirst()
              .orElseThrow(() -> new AssertionError("no DATA_BLOCK answer: " + frames));
          int segment = data.le().getInt(0);
          long offset = data.le().getLong(8);
          // ... which we give back twice.
          p.release(segment, offset);
          assertTrue(!p.hungUpWithin(200), "one RELEASE of a lent extent is legal");
          p.release(segment, offset);
        }
        case TRAILERS_FROM_CLIENT -> {
          p.startCall(1, Hardening.UNARY, Map.of());
          p.write(FrameLayout.TYPE_TRAILERS, 0, 1,
              HostilePeer.le(4 + 4 + 11 + 4 + 1).putInt(1).putInt(11)
                  .put("grpc-status".getBytes()).putInt(1).put((byte) '0').array());
        }
      }
      long start = System.nanoTime();
      assertTrue(p.hungUpWithin(2000), attack + ": the server hung up on the hostile peer");
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertTrue(ms < 1000, attack + ": hung up after " + ms + " ms");
    }
    // Each close is logged with the connection and its status as parameters.
    List<Status> closings = capture.records().stream()
        .filter(r -> r.getParameters() != null && r.getParameters().length == 2)
        .map(r -> r.getParameters()[1]).filter(Status.class::isInstance).map(Status.class::cast)
        .toList();
    Status closing = closings.stream().filter(s -> s.getCode() == Status.Code.INTERNAL)
        .findFirst().orElseThrow(() -> new AssertionError(
            attack + ": no INTERNAL close was logged: " + closings));
    assertTrue(closing.getDescription() != null && closing.getDescription().length() > 10,
        "a clear message: " + closing);
    assertTrue(callsNow() >= 3, "honest traffic still runs after " + attack);
  }

  /**
   * Reordered frames: DATA before REQUEST_HEADERS (inline and block). The server either hangs up
   * or ignores them — releasing the block — and the connection keeps working for a valid call.
   */
  @Test
  void replyMailboxPageOutsideThePoolClosesOnlyThatConnection() throws Exception {
    ShmTransportConfig small = ShmTransportConfig.defaults().toBuilder()
        .sizes(1 << 20, 1 << 20, 0).build(); // a 256-page pool
    try (HostilePeer p = new HostilePeer(server.getPort(), small)) {
      assertTrue(p.established.replyMailbox(), "the server offers reply mailboxes");
      p.write(FrameLayout.TYPE_REQUEST_HEADERS, MailboxLayout.FLAG_REPLY_MAILBOX, 256, 1,
          HostilePeer.requestHeaders("/" + Hardening.UNARY.getFullMethodName(), Map.of()));
      p.sendMessage(1, Hardening.message(1, 10), true);
      assertTrue(p.hungUpWithin(10_000), "the server closed the connection");
    }
    assertTrue(callsNow() >= 3, "honest traffic still runs");
  }

  @Test
  void replyMailboxGetsTheWholeAnswerAndNothingOfItTakesTheRing() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      long at = p.startCallWithMailbox(1, 7, Hardening.UNARY);
      byte[] request = Hardening.message(1, 100);
      p.sendMessage(1, request, true);
      assertTrue(io.grpcshm.Eventually.holds(() -> p.txPool.get(ValueLayout.JAVA_INT,
          at + MailboxLayout.STATE_OFFSET) == MailboxLayout.STATE_FILLED, 30), "FILLED");
      int length = p.txPool.get(ValueLayout.JAVA_INT, at + MailboxLayout.LENGTH_OFFSET);
      ByteBuffer records = ByteBuffer.allocate(length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      MemorySegment.copy(p.txPool, ValueLayout.JAVA_BYTE, at + MailboxLayout.RECORDS_OFFSET,
          records.array(), 0, length);
      List<Integer> types = new ArrayList<>();
      byte[] echoed = null;
      for (int i = 0; i < length; ) {
        int recordLength = records.getInt(i);
        types.add(records.get(i + FrameLayout.TYPE_OFFSET) & 0xff);
        assertEquals(1, records.getInt(i + FrameLayout.STREAM_ID_OFFSET));
        if (types.getLast() == FrameLayout.TYPE_DATA_INLINE) {
          echoed = java.util.Arrays.copyOfRange(records.array(),
              i + FrameLayout.HEADER_LENGTH + 5, i + recordLength);
        }
        i += recordLength;
      }
      assertEquals(List.of(FrameLayout.TYPE_RESPONSE_HEADERS, FrameLayout.TYPE_DATA_INLINE,
          FrameLayout.TYPE_TRAILERS), types);
      assertArrayEquals(request, echoed);
      // Nothing of stream 1 on the ring.
      List<HostilePeer.Frame> ring = p.readUntil(f -> false, 200);
      assertTrue(ring.stream().noneMatch(f -> f.streamId() == 1), "ring: " + ring);
    }
  }

  /**
   * A client (written from PROTOCOL.md) whose request needs more than the stream window while it
   * waits in a mailbox: the server's WINDOW_UPDATE comes on the ring, not behind the answer, and
   * an answer too large for the page comes on the ring with the page marked ON_RING.
   */
  @Test
  void windowUpdatesTakeTheRingAndALargeAnswerLeavesTheMailboxOnRing() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      long at = p.startCallWithMailbox(1, 3, Hardening.UNARY);
      // 2.5 MiB: past half the server's 4 MiB window, where it sends WINDOW_UPDATE.
      byte[] request = Hardening.message(1, (5 << 20) / 2);
      byte[] framed = HostilePeer.grpcFrame(request);
      List<HostilePeer.Frame> seen = new ArrayList<>();
      int chunk = 128 * 1024;
      for (int off = 0; off < framed.length; ) {
        int n = Math.min(chunk, framed.length - off);
        byte[] piece = java.util.Arrays.copyOfRange(framed, off, off + n);
        boolean last = off + n == framed.length;
        if (last) {
          assertTrue(HostilePeer.has(seen, FrameLayout.TYPE_WINDOW_UPDATE, 1),
              "WINDOW_UPDATE on the ring before the request ended: " + seen);
          assertEquals(MailboxLayout.STATE_WAITING,
              p.txPool.get(ValueLayout.JAVA_INT, at + MailboxLayout.STATE_OFFSET));
        }
        try {
          p.write(FrameLayout.TYPE_DATA_INLINE, last ? FrameLayout.FLAG_END_STREAM : 0, 1, piece);
          off += n;
        } catch (IllegalStateException ringFull) {
          seen.addAll(p.readUntil(f -> true, 5)); // the server catches up meanwhile
        }
        if (!last && !HostilePeer.has(seen, FrameLayout.TYPE_WINDOW_UPDATE, 1)) {
          // Before the last piece, wait for it (the server may still be reading).
          seen.addAll(p.readUntil(f -> HostilePeer.has(f, FrameLayout.TYPE_WINDOW_UPDATE, 1),
              off >= framed.length - chunk ? 10_000 : 1));
        }
      }
      seen.addAll(p.readUntil(f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 1), 30_000));
      assertTrue(HostilePeer.has(seen, FrameLayout.TYPE_TRAILERS, 1), "answered: " + seen);
      assertEquals(MailboxLayout.STATE_ON_RING,
          p.txPool.get(ValueLayout.JAVA_INT, at + MailboxLayout.STATE_OFFSET));
    }
  }

  @Test
  void dataBeforeHeadersIsIgnoredOrFatalButNeverMisrouted() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      p.sendMessage(1, Hardening.message(1, 100), true);
      byte[] hidden = HostilePeer.grpcFrame(Hardening.message(3, 50_000));
      MemorySegment.copy(hidden, 0, p.txPool, ValueLayout.JAVA_BYTE, 0, hidden.length);
      p.write(FrameLayout.TYPE_DATA_BLOCK, FrameLayout.FLAG_END_STREAM, 3,
          block(0, hidden.length, 0));
      // Now a valid call on stream 5 (ids only grow).
      byte[] request = Hardening.message(5, 1000);
      p.startCall(5, Hardening.UNARY, Map.of());
      p.sendMessage(5, request, true);
      List<HostilePeer.Frame> frames = p.readUntil(
          f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 5), 3000);
      if (frames.isEmpty() && p.hungUpWithin(100)) {
        return; // rejected the connection: allowed
      }
      assertTrue(HostilePeer.has(frames, FrameLayout.TYPE_RELEASE, 0),
          "the unroutable DATA_BLOCK was released: " + frames);
      assertTrue(frames.stream().noneMatch(f -> f.streamId() == 1 || f.streamId() == 3),
          "nothing answered on streams that were never opened: " + frames);
      HostilePeer.Frame data = frames.stream()
          .filter(f -> f.type() == FrameLayout.TYPE_DATA_INLINE && f.streamId() == 5)
          .findFirst().orElseThrow(() -> new AssertionError("no answer on 5: " + frames));
      byte[] answer = java.util.Arrays.copyOfRange(data.body(), 5, data.body().length);
      assertArrayEquals(request, answer, "stream 5 got its own echo");
      HostilePeer.Frame trailers = frames.stream()
          .filter(f -> f.type() == FrameLayout.TYPE_TRAILERS).findFirst().orElseThrow();
      assertTrue(new String(trailers.body(), java.nio.charset.StandardCharsets.ISO_8859_1)
          .contains("grpc-status\u0000\u0000\u0000\u0001\u0000\u0000\u00000")
          || new String(trailers.body(), java.nio.charset.StandardCharsets.ISO_8859_1)
          .contains("0"), "OK trailers");
    }
    assertTrue(callsNow() >= 3, "honest traffic still runs");
  }

  /**
   * A peer that opens calls with a 1 s deadline and then stops consuming its receive ring (and
   * never returns a block): the server neither blocks other connections nor holds the calls
   * past their deadline, and its heap stays bounded.
   */
  @Test
  void peerThatStopsConsumingCannotStallTheServer() throws Exception {
    Runtime rt = Runtime.getRuntime();
    System.gc();
    long heapBefore = rt.totalMemory() - rt.freeMemory();
    int cancelledBefore = stats.cancellations.size();
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      long started = System.nanoTime();
      int streams = 8;
      for (int i = 0; i < streams; i++) {
        int id = 2 * i + 1;
        p.startCall(id, Hardening.SERVER_STREAM, Map.of("grpc-timeout", "1000m"));
        // small messages fill the ring; 256 KiB ones fill the pool (never released)
        p.sendMessage(id, Hardening.streamRequest(-1, i % 2 == 0 ? 100 : 256 << 10), true);
      }
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (stats.cancellations.size() < cancelledBefore + streams
          && System.nanoTime() < until) {
        Thread.sleep(10);
      }
      List<long[]> cancels = new ArrayList<>(stats.cancellations);
      assertEquals(streams, cancels.size() - cancelledBefore,
          "every call of the stalled peer ended by its deadline");
      for (long[] c : cancels.subList(cancelledBefore, cancels.size())) {
        long ms = TimeUnit.NANOSECONDS.toMillis(c[0] - started);
        assertTrue(ms < 2000, "deadline fired after " + ms + " ms");
      }
      assertTrue(stats.messagesOut.get() > 0, "the server did send to the stalled peer");
      assertTrue(callsNow() >= 3, "honest traffic runs while the peer is stalled");
      System.gc();
      long grew = (rt.totalMemory() - rt.freeMemory() - heapBefore) >> 20;
      assertTrue(grew < 128, "server heap grew by " + grew + " MiB for a stalled peer");
    }
    assertTrue(callsNow() >= 3, "honest traffic still runs");
  }
}
