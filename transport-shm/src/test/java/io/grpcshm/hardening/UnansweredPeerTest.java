package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Peers that provoke answers and never take them: PINGs with the reply ring never read, segment
 * offers never acknowledged. The server neither queues without bound nor parks threads on the
 * peer; an honest client on another connection keeps working.
 */
class UnansweredPeerTest {
  private static final int POOL = 256 << 10;
  private Server server;
  private ManagedChannel honest;

  @BeforeEach
  void start() throws Exception {
    // A small pool, so a 1 MiB response needs an extra segment; a long handshake timeout, so a
    // wait for the peer's segment ack would be unmistakable.
    server = ShmServerBuilder.forPort(0).addService(Hardening.service(new Hardening.Stats()))
        .sharedMemorySizes(ShmTransportConfig.DEFAULT_RING_CAPACITY, POOL, 64L << 20)
        .handshakeTimeout(30, TimeUnit.SECONDS).build().start();
    honest = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    Calls.echo(honest, 1000);
  }

  @AfterEach
  void stop() throws Exception {
    honest.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static ShmTransportConfig smallPool() {
    return ShmTransportConfig.defaults().toBuilder()
        .sizes(ShmTransportConfig.DEFAULT_RING_CAPACITY, POOL, 64L << 20).build();
  }

  /**
   * Every PING is answered with a PING_ACK; with the answers never read, they would queue in
   * the server's heap forever (1.55 M of them, then OutOfMemoryError, in the report). The server
   * cuts the peer off once its queue of such answers reaches its bound.
   */
  @Test
  void pingFloodWithTheReplyRingUnreadIsCutOff() throws Exception {
    Runtime rt = Runtime.getRuntime();
    System.gc();
    long heapBefore = rt.totalMemory() - rt.freeMemory();
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      byte[] ping = HostilePeer.le(8).putLong(42).array();
      long sent = 0;
      boolean hungUp = false;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!hungUp && System.nanoTime() < until) {
        try {
          p.write(FrameLayout.TYPE_PING, 0, 0, ping);
          sent++;
        } catch (IllegalStateException ringFull) {
          hungUp = p.hungUpWithin(1);
        }
      }
      assertTrue(hungUp, "the server still served a peer that never read " + sent
          + " PING_ACKs");
      // The answers it could not deliver: a ring's worth plus the bound, not all of them.
      System.gc();
      long grew = (rt.totalMemory() - rt.freeMemory() - heapBefore) >> 20;
      assertTrue(grew < 64, "server heap grew by " + grew + " MiB");
    }
    Calls.echo(honest, 100_000);
  }

  /**
   * A 1 MiB response does not fit the 256 KiB pool, so the server offers the peer a segment.
   * This peer never answers the offer: the response still goes out at once (inline), and no
   * thread waits for the answer.
   */
  @Test
  void segmentOfferNeverAnsweredParksNoThread() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort(), smallPool())) {
      int calls = 4;
      for (int i = 0; i < calls; i++) {
        int id = 2 * i + 1;
        p.startCall(id, Hardening.SERVER_STREAM, Map.of());
        p.sendMessage(id, Hardening.streamRequest(1, 1 << 20), true);
      }
      // A transport that waits for the ack parks the responding thread in acquireSegment until
      // the offer times out (seconds): watch for any thread waiting there meanwhile.
      String parked = null;
      long watchUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
      while (parked == null && System.nanoTime() < watchUntil) {
        parked = threadWaitingIn("acquireSegment");
        Thread.sleep(10);
      }
      assertEquals(null, parked, "a thread waits for the peer's answer");
      List<HostilePeer.Frame> frames = p.readUntil(f -> f.stream()
          .filter(x -> x.type() == FrameLayout.TYPE_TRAILERS).count() == calls, 20_000);
      List<Integer> done = new ArrayList<>();
      for (HostilePeer.Frame f : frames) {
        if (f.type() == FrameLayout.TYPE_TRAILERS) {
          done.add(f.streamId());
        }
      }
      assertEquals(calls, done.size(), "responses completed: " + done);
    }
    Calls.echo(honest, 2 << 20);
  }

  /**
   * A segment the server offered but the peer never acknowledged was never lent: a RELEASE of it
   * is a lie (it would put the segment in use before the peer mapped it, and a later refusal
   * would unmap memory a payload is being written into). The server hangs up instead.
   */
  @Test
  void releaseOfAnUnacknowledgedSegmentIsAProtocolError() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort(), smallPool())) {
      p.startCall(1, Hardening.SERVER_STREAM, Map.of());
      p.sendMessage(1, Hardening.streamRequest(1, 1 << 20), true);
      byte[] in = new byte[io.grpcshm.internal.nativeio.UnixSeqpacketSocket.MAX_MESSAGE];
      int[] fds = new int[io.grpcshm.internal.nativeio.UnixSeqpacketSocket.MAX_FDS];
      int offered = -1;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (offered < 0 && System.nanoTime() < until) {
        p.readUntil(f -> true, 10); // keep the server's ring moving
        int n;
        try {
          n = p.established.socket().receive(in, fds, 100);
        } catch (java.net.SocketTimeoutException e) {
          continue;
        }
        for (int fd : fds) {
          if (fd >= 0) {
            io.grpcshm.internal.nativeio.Linux.close(fd);
          }
        }
        if (n > 0 && io.grpcshm.internal.handshake.HandshakeMessage.decode(in, n)
            instanceof io.grpcshm.internal.handshake.HandshakeMessage.SegmentAttach attach) {
          offered = attach.segmentId();
        }
      }
      assertTrue(offered > 0, "the server offered a segment for its 1 MiB response");
      p.release(offered, 0);
      assertTrue(p.hungUpWithin(10_000), "the server took a RELEASE of a segment never lent");
    }
    Calls.echo(honest, 2 << 20);
  }

  private static String threadWaitingIn(String method) {
    for (ThreadInfo t : ManagementFactory.getThreadMXBean().dumpAllThreads(false, false)) {
      // Waiting for an answer parks or waits; BLOCKED is only a turn at segmentLock (a monitor,
      // held while a segment is made) behind a descheduled holder on a busy machine.
      if (t.getThreadState() != Thread.State.WAITING
          && t.getThreadState() != Thread.State.TIMED_WAITING) {
        continue;
      }
      for (StackTraceElement e : t.getStackTrace()) {
        if (e.getMethodName().equals(method)) {
          return t.getThreadName() + " (" + t.getThreadState() + ")";
        }
      }
    }
    return null;
  }
}
