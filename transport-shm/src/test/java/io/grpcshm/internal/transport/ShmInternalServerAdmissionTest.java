package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.ServerListener;
import io.grpc.internal.ServerStream;
import io.grpc.internal.ServerTransport;
import io.grpc.internal.ServerTransportListener;
import io.grpcshm.Eventually;
import io.grpcshm.LogCapture;
import io.grpcshm.PeerAuthorizationPolicy;
import io.grpcshm.ResourceSnapshot;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.ShmHandshakeException;
import io.grpcshm.internal.loop.Workers;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.NativeException;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.transport.ShmInternalServer.Pending;
import io.grpcshm.internal.transport.ShmInternalServer.Slots.Offer;
import io.grpcshm.internal.transport.ShmInternalServer.Slots;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Admission at accept: the handshake slots' per-uid fairness and bounds, refusals a peer reads
 * whether or not it sent its hello, and silent connections of one uid that are capped, refused at
 * once beyond the cap and dropped within the handshake timeout.
 */
class ShmInternalServerAdmissionTest {
  private static final int SILENT = 160;
  private static final Logger SERVER_LOG = Logger.getLogger(ShmInternalServer.class.getName());

  private final LogCapture capture = new LogCapture();
  private final List<UnixSeqpacketSocket> sockets = new ArrayList<>();
  private final List<ServerTransport> transports = new CopyOnWriteArrayList<>();
  private final CountDownLatch serverShutdown = new CountDownLatch(1);
  private ShmInternalServer server;

  @BeforeEach
  void captureLog() {
    SERVER_LOG.addHandler(capture);
  }

  @AfterEach
  void cleanUp() throws Exception {
    try {
      for (UnixSeqpacketSocket s : sockets) {
        s.close();
      }
      for (ServerTransport t : transports) {
        t.shutdownNow(Status.UNAVAILABLE.withDescription("test over"));
      }
      if (server != null) {
        server.shutdown();
        assertTrue(serverShutdown.await(10, TimeUnit.SECONDS), "acceptor stopped");
      }
    } finally {
      SERVER_LOG.removeHandler(capture);
    }
  }

  // ---- slots, with made-up uids ---------------------------------------------------------------

  private static Pending pending(int uid, long deadline) {
    return new Pending(null, uid, deadline);
  }

  private static final long LATER = System.nanoTime() + TimeUnit.HOURS.toNanos(1);

  @Test
  void oneUidCannotTakeEverySlot() {
    Slots slots = new Slots(32, 8, 64, 256);
    for (int i = 0; i < 8; i++) {
      assertEquals(Offer.START, slots.offer(pending(1000, LATER)));
    }
    for (int i = 0; i < 64; i++) {
      assertEquals(Offer.WAIT, slots.offer(pending(1000, LATER)), "uid 1000 waits");
    }
    assertEquals(Offer.FULL, slots.offer(pending(1000, LATER)), "uid 1000's queue is full");
    assertEquals(8, slots.active(1000));
    for (int uid = 1; uid <= 3; uid++) {
      for (int i = 0; i < 8; i++) {
        assertEquals(Offer.START, slots.offer(pending(uid, LATER)), "another uid starts at once");
      }
    }
    assertEquals(32, slots.active());
    assertEquals(Offer.WAIT, slots.offer(pending(7, LATER)), "all 32 slots busy: uid 7 waits");
    assertEquals(65, slots.waiting());
  }

  @Test
  void aFreedSlotGoesToTheWaitingUidWithFewestHandshakes() {
    Slots slots = new Slots(4, 4, 64, 256);
    List<Pending> first = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      Pending p = pending(1, LATER);
      first.add(p);
      assertEquals(Offer.START, slots.offer(p));
    }
    for (int i = 0; i < 10; i++) {
      slots.offer(pending(1, LATER)); // uid 1 queues ten more
    }
    Pending two = pending(2, LATER);
    Pending three = pending(3, LATER);
    assertEquals(Offer.WAIT, slots.offer(two));
    assertEquals(Offer.WAIT, slots.offer(three));
    List<Pending> expired = new ArrayList<>();
    long now = System.nanoTime();
    // uid 1 queued first, but uids 2 and 3 have no handshake running.
    assertSame(two, slots.finish(first.get(0), now, expired));
    assertSame(three, slots.finish(first.get(1), now, expired));
    Pending next = slots.finish(first.get(2), now, expired);
    assertEquals(1, next.uid, "then uid 1 again");
    assertEquals(4, slots.active());
    assertTrue(expired.isEmpty());
  }

  @Test
  void waitingIsBoundedPerUidAndInTotal() {
    Slots slots = new Slots(2, 1, 3, 4);
    assertEquals(Offer.START, slots.offer(pending(1, LATER)));
    assertEquals(Offer.START, slots.offer(pending(2, LATER)));
    for (int i = 0; i < 3; i++) {
      assertEquals(Offer.WAIT, slots.offer(pending(1, LATER)));
    }
    assertEquals(Offer.FULL, slots.offer(pending(1, LATER)), "per uid");
    assertEquals(Offer.WAIT, slots.offer(pending(3, LATER)));
    assertEquals(Offer.FULL, slots.offer(pending(4, LATER)), "in total");
    assertEquals(4, slots.waiting());
  }

  @Test
  void waitingPastTheDeadlineIsHandedBackNotStarted() {
    Slots slots = new Slots(1, 1, 8, 8);
    long now = System.nanoTime();
    Pending running = pending(1, LATER);
    assertEquals(Offer.START, slots.offer(running));
    Pending stale = pending(2, now - 1);
    Pending fresh = pending(2, LATER);
    assertEquals(Offer.WAIT, slots.offer(stale));
    assertEquals(Offer.WAIT, slots.offer(fresh));
    assertEquals(stale.deadline, slots.earliestDeadline());
    List<Pending> expired = new ArrayList<>();
    assertSame(fresh, slots.finish(running, now, expired), "the fresh one starts");
    assertEquals(List.of(stale), expired, "the stale one is handed back to be refused");

    Pending late = pending(3, now + 10);
    assertEquals(Offer.WAIT, slots.offer(late));
    expired.clear();
    slots.expire(now + 10, expired);
    assertEquals(List.of(late), expired);
    assertEquals(Long.MAX_VALUE, slots.earliestDeadline());
    assertNull(slots.finish(fresh, now, expired));
    assertEquals(0, slots.trackedUids(), "no state kept for idle uids");
  }

  @Test
  void putBackAndClose() {
    Slots slots = new Slots(1, 1, 8, 8);
    Pending a = pending(1, LATER);
    Pending b = pending(1, LATER);
    assertEquals(Offer.START, slots.offer(a));
    assertEquals(Offer.WAIT, slots.offer(b));
    assertTrue(slots.putBack(a), "no thread for a: back to the head of the queue");
    assertSame(a, slots.next(System.nanoTime(), new ArrayList<>()), "a first");
    assertEquals(List.of(b), slots.close());
    assertEquals(Offer.FULL, slots.offer(pending(2, LATER)), "closed");
    assertTrue(!slots.putBack(a), "closed: the caller closes it");
    assertEquals(0, slots.trackedUids());
  }

  // ---- a real server ---------------------------------------------------------------------------

  private String startServer(PeerAuthorizationPolicy policy, long handshakeTimeoutMillis)
      throws Exception {
    ShmTransportConfig config = ShmTransportConfig.defaults().toBuilder().peerPolicy(policy)
        .handshakeTimeoutMillis(handshakeTimeoutMillis).build();
    String name = "@grpc-shm-admission-test/" + ThreadLocalRandom.current().nextLong(1L << 40);
    server = new ShmInternalServer(name, config, List.of());
    server.start(new ServerListener() {
      @Override
      public ServerTransportListener transportCreated(ServerTransport transport) {
        transports.add(transport);
        return new ServerTransportListener() {
          @Override
          public void streamCreated(ServerStream stream, String method, Metadata headers) {
            stream.close(Status.UNIMPLEMENTED, new Metadata());
          }

          @Override
          public Attributes transportReady(Attributes attributes) {
            return attributes;
          }

          @Override
          public void transportTerminated() {}
        };
      }

      @Override
      public void serverShutdown() {
        serverShutdown.countDown();
      }
    });
    return name;
  }

  private UnixSeqpacketSocket connect(String name) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      try {
        UnixSeqpacketSocket s = UnixSeqpacketSocket.connect(name);
        sockets.add(s);
        return s;
      } catch (NativeException e) {
        if (System.nanoTime() > until) {
          throw e;
        }
        Thread.sleep(2); // backlog full for a moment
      }
    }
  }

  /** What a socket got from the server so far: a reject code, EOF, or nothing yet. */
  private static final class Seen {
    int rejectCode = -1;
    String reason;
    boolean eof;
  }

  private static void poll(UnixSeqpacketSocket s, Seen seen) throws Exception {
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
    while (!seen.eof) {
      int n = s.tryReceive(buf, fds);
      if (n == UnixSeqpacketSocket.NOTHING) {
        return;
      }
      if (n < 0) {
        seen.eof = true;
        return;
      }
      ByteBuffer m = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN);
      assertEquals(0x4d485347, m.getInt(0), "magic");
      assertEquals(3, m.get(4), "only SERVER_REJECT is sent to a silent peer");
      seen.rejectCode = m.getInt(8);
      seen.reason = new String(buf, 14, m.getShort(12) & 0xffff, StandardCharsets.UTF_8);
    }
  }

  private void assertQuietLog() {
    for (LogRecord r : capture.records()) {
      assertNull(r.getThrown(), "no stack trace in the server log: " + r.getMessage());
    }
    long warnings = capture.records().stream()
        .filter(r -> r.getLevel().intValue() >= Level.WARNING.intValue()).count();
    assertTrue(warnings <= 2, "one line per kind of refusal: "
        + capture.records().stream().map(LogRecord::getMessage).toList());
  }

  /**
   * 160 silent connections of our own (authorised) uid: 8 get handshake slots, 64 wait, the
   * other 88 are refused with RESOURCE_EXHAUSTED at once; every one of them is closed within the
   * handshake timeout of its accept (waiting ones included), and then we connect again.
   */
  @Test
  void silentConnectionsOfOneUidAreCappedRefusedAtOnceAndDroppedInTime() throws Exception {
    long timeoutMillis = 3000;
    String name = startServer(PeerAuthorizationPolicy.sameUser(), timeoutMillis);
    ResourceSnapshot before = ResourceSnapshot.settled();
    List<UnixSeqpacketSocket> silent = new ArrayList<>();
    long t0 = System.nanoTime();
    for (int i = 0; i < SILENT; i++) {
      silent.add(connect(name));
    }
    long connected = System.nanoTime();
    List<Seen> seen = new ArrayList<>();
    for (int i = 0; i < SILENT; i++) {
      seen.add(new Seen());
    }
    int expectRefused = SILENT - ShmInternalServer.MAX_HANDSHAKES_PER_UID
        - ShmInternalServer.MAX_WAITING_PER_UID;
    long refusedAt = 0;
    long allClosedAt = 0;
    long until = connected + TimeUnit.MILLISECONDS.toNanos(timeoutMillis + 10_000);
    while (System.nanoTime() < until) {
      for (int i = 0; i < SILENT; i++) {
        poll(silent.get(i), seen.get(i));
      }
      long refused = seen.stream()
          .filter(s -> s.rejectCode == Status.Code.RESOURCE_EXHAUSTED.value()).count();
      if (refusedAt == 0 && refused >= expectRefused) {
        refusedAt = System.nanoTime();
      }
      if (seen.stream().allMatch(s -> s.eof)) {
        allClosedAt = System.nanoTime();
        break;
      }
      Thread.sleep(10);
    }
    long refusedMs = TimeUnit.NANOSECONDS.toMillis(refusedAt - connected);
    long closedMs = TimeUnit.NANOSECONDS.toMillis(allClosedAt - t0);
    assertTrue(refusedAt != 0 && refusedMs < timeoutMillis,
        expectRefused + " over the cap refused at once (" + refusedMs + " ms)");
    for (Seen s : seen) {
      assertTrue(s.rejectCode == -1 || s.rejectCode == Status.Code.RESOURCE_EXHAUSTED.value(),
          "code " + s.rejectCode);
    }
    for (Seen s : seen) {
      assertTrue(s.reason == null || s.reason.contains("uid " + Linux.getuid()), s.reason);
    }
    assertTrue(allClosedAt != 0, "every silent connection closed by the server: "
        + seen.stream().filter(s -> !s.eof).count() + " still open");
    // Slots run for the handshake timeout and the queue's deadlines fall in the same window.
    assertTrue(closedMs < timeoutMillis + 5000, "all closed after " + closedMs + " ms");

    for (UnixSeqpacketSocket s : silent) {
      s.close();
    }
    sockets.clear();
    long t1 = System.nanoTime();
    Handshakes.Established e = Handshakes.client(name, ShmTransportConfig.defaults());
    long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1);
    e.socket().close();
    e.mapping().close();
    assertTrue(ms < 2000, "handshake after the attack took " + ms + " ms");
    for (ServerTransport t : transports) {
      t.shutdownNow(Status.UNAVAILABLE.withDescription("test over"));
    }
    // Descriptors only: threads (the process-wide unmapper) and mappings may legitimately stay.
    ResourceSnapshot after = ResourceSnapshot.take();
    long fdsUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (after.fds() > before.fds() && System.nanoTime() < fdsUntil) {
      Thread.sleep(50);
      after = ResourceSnapshot.take();
    }
    assertTrue(after.fds() <= before.fds(), "descriptors " + before + " -> " + after);
    assertQuietLog();
  }

  /**
   * The server refuses at accept, before reading anything. A client that reads first, one that
   * sends its hello first (as older clients do), and our own client all read the refusal.
   */
  @Test
  void aRefusedPeerReadsTheRejectWithOrWithoutItsHello() throws Exception {
    String name = startServer(
        (pid, uid, gid) -> Status.PERMISSION_DENIED.withDescription("not you, uid " + uid), 5000);
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];

    UnixSeqpacketSocket silent = connect(name);
    int n = silent.receive(buf, fds, 5000);
    ByteBuffer reject = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(3, reject.get(4), "SERVER_REJECT without a hello");
    assertEquals(Status.Code.PERMISSION_DENIED.value(), reject.getInt(8));
    long t0 = System.nanoTime();
    assertEquals(-1, silent.receive(buf, fds, 5000), "then the server closes");
    assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 3000, "soon");

    byte[] hello = ByteBuffer.allocate(27).order(ByteOrder.LITTLE_ENDIAN).putInt(0x4d485347)
        .put((byte) 1).put((byte) 4).putShort((short) 0).putInt(1 << 16).putLong(1 << 20)
        .putInt(1 << 20).putShort((short) 0).put((byte) 0).array();
    for (int i = 0; i < 20; i++) {
      try (UnixSeqpacketSocket old = UnixSeqpacketSocket.connect(name)) {
        old.send(hello, hello.length, -1);
        n = old.receive(buf, fds, 5000);
        assertEquals(3, buf[4], "a client that sends its hello first reads SERVER_REJECT");
      }
    }
    for (int i = 0; i < 50; i++) {
      ShmHandshakeException e = assertThrows(ShmHandshakeException.class,
          () -> Handshakes.client(name, ShmTransportConfig.defaults()));
      assertEquals(Status.Code.PERMISSION_DENIED, e.status().getCode(), e.status().toString());
      assertTrue(e.status().getDescription().contains("not you"), e.status().toString());
    }
    assertTrue(transports.isEmpty(), "nothing was set up for a refused peer");
    assertQuietLog();
  }

  /**
   * With every worker thread of the process busy, the pool would run a handshake on its caller,
   * the acceptor, which must never wait for a peer: the handshake waits in its queue instead.
   * A silent peer connects first, then a real client; once workers are free again both start,
   * and the client is served at once rather than after the silent peer's handshake timeout.
   */
  @Test
  void theAcceptorNeverRunsAHandshakeItself() throws Exception {
    String name = startServer(PeerAuthorizationPolicy.sameUser(), 5000);
    CountDownLatch release = new CountDownLatch(1);
    AtomicBoolean saturated = new AtomicBoolean();
    Thread filler = new Thread(() -> {
      Thread self = Thread.currentThread();
      for (int i = 0; i < 4 * Workers.MAX_THREADS && !saturated.get(); i++) {
        Workers.get().execute(() -> {
          if (Thread.currentThread() == self) {
            saturated.set(true); // the pool ran it on its caller: every worker is busy
            return;
          }
          try {
            release.await(30, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        });
      }
    }, "worker-filler");
    CompletableFuture<Long> client = new CompletableFuture<>();
    try {
      filler.start();
      filler.join(10_000);
      assertTrue(saturated.get(), "every worker thread is busy");
      connect(name); // silent: a handshake that would hold its thread for 5 s
      Thread clientThread = new Thread(() -> {
        long t0 = System.nanoTime();
        try {
          Handshakes.Established e = Handshakes.client(name, ShmTransportConfig.defaults());
          e.socket().close();
          e.mapping().close();
          client.complete(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        } catch (Throwable t) {
          client.completeExceptionally(t);
        }
      }, "admission-test-client");
      clientThread.setDaemon(true);
      clientThread.start();
      Thread.sleep(300);
      assertTrue(!client.isDone(), "no worker to run the handshake yet: " + client);
      long released = System.nanoTime();
      release.countDown();
      client.get(10, TimeUnit.SECONDS);
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - released);
      assertTrue(ms < 2500, "client served " + ms + " ms after workers were free");
    } finally {
      release.countDown();
      filler.join(10_000);
    }
  }

  /** Stopping the server refuses and closes the connections still waiting for a slot. */
  @Test
  void shutdownClosesWaitingConnections() throws Exception {
    String name = startServer(PeerAuthorizationPolicy.sameUser(), 2000);
    List<UnixSeqpacketSocket> silent = new ArrayList<>();
    for (int i = 0; i < ShmInternalServer.MAX_HANDSHAKES_PER_UID + 4; i++) {
      silent.add(connect(name));
    }
    // Wait until the acceptor has taken all of them: running a handshake or waiting for a slot.
    Eventually.holds(() -> server.handshakesAdmitted() >= silent.size(), 30);
    assertEquals(silent.size(), server.handshakesAdmitted(), "all accepted");
    server.shutdown();
    assertTrue(serverShutdown.await(5, TimeUnit.SECONDS), "acceptor stopped");
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
    int unavailable = 0;
    for (UnixSeqpacketSocket s : silent) {
      int n = s.receive(buf, fds, 5000); // waiting: a reject; running: EOF at the timeout
      if (n > 0 && buf[4] == 3) {
        unavailable += ByteBuffer.wrap(buf, 8, 4).order(ByteOrder.LITTLE_ENDIAN).getInt()
            == Status.Code.UNAVAILABLE.value() ? 1 : 0;
        n = s.receive(buf, fds, 5000);
      }
      assertEquals(-1, n, "closed");
    }
    assertEquals(4, unavailable, "the four waiting ones were refused with UNAVAILABLE");
    server = null;
  }
}
