package io.grpcshm.hardening;

import io.grpcshm.ShmAddress;
import io.grpcshm.internal.handshake.HandshakeMessage;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.ring.RingDescriptor;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Hostile peers in a loop, for the soak (-Dgrpcshm.soakHostile=true): a ping flood
 * with the reply ring unread, segment-attach spam over many connections, silent connections that
 * hold handshake slots, garbage in the ring, malformed grpc-timeouts, and segment offers never
 * answered. Each round ends with the attacker gone, so the soak can check that the server comes
 * back to where it was. Counts what each attack achieved; never throws.
 */
final class SoakAttacker implements Runnable {
  enum Attack {
    PING_FLOOD,
    SEGMENT_SPAM,
    SILENT_CONNECTIONS,
    GARBAGE_RING,
    BAD_TIMEOUTS,
    UNANSWERED_OFFERS
  }

  private final int port;
  private final AtomicBoolean stop;
  final AtomicLong rounds = new AtomicLong();
  /** Per attack: times the server cut the attacker off or refused what it asked. */
  final AtomicLong[] repelled = new AtomicLong[Attack.values().length];
  /** Per attack: rounds that did not go as a defended server would make them go. */
  final AtomicLong[] unexpected = new AtomicLong[Attack.values().length];
  final List<String> notes = new ArrayList<>();

  SoakAttacker(int port, AtomicBoolean stop) {
    this.port = port;
    this.stop = stop;
    for (int i = 0; i < repelled.length; i++) {
      repelled[i] = new AtomicLong();
      unexpected[i] = new AtomicLong();
    }
  }

  @Override
  public void run() {
    while (!stop.get()) {
      for (Attack a : Attack.values()) {
        if (stop.get()) {
          return;
        }
        try {
          if (attack(a)) {
            repelled[a.ordinal()].incrementAndGet();
          } else {
            unexpected[a.ordinal()].incrementAndGet();
          }
        } catch (Exception | AssertionError e) {
          unexpected[a.ordinal()].incrementAndGet();
          synchronized (notes) {
            if (notes.size() < 20) {
              notes.add(a + ": " + e);
            }
          }
        }
      }
      rounds.incrementAndGet();
    }
  }

  /** True if the server defended itself as it should. */
  private boolean attack(Attack a) throws Exception {
    switch (a) {
      case PING_FLOOD -> {
        try (HostilePeer p = new HostilePeer(port)) {
          byte[] ping = HostilePeer.le(8).putLong(7).array();
          long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
          while (System.nanoTime() < until && !stop.get()) {
            try {
              p.write(FrameLayout.TYPE_PING, 0, 0, ping);
            } catch (IllegalStateException ringFull) {
              if (p.hungUpWithin(1)) {
                return true;
              }
            }
          }
          return stop.get();
        }
      }
      case SEGMENT_SPAM -> {
        int fd = Linux.memfdCreate("soak-hostile-segment");
        List<HostilePeer> peers = new ArrayList<>();
        try {
          Linux.ftruncate(fd, 4096);
          Linux.addSeals(fd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
          long refused = 0;
          for (int c = 0; c < 40 && !stop.get(); c++) {
            HostilePeer p = new HostilePeer(port);
            peers.add(p);
            for (int id = 1; id <= 256; id += 16) {
              int mapped = attachBatch(p.established.socket(), id, 16, fd);
              if (mapped < 0) {
                break;
              }
              refused += 16 - mapped;
            }
          }
          return refused > 0 || stop.get();
        } finally {
          for (HostilePeer p : peers) {
            p.close();
          }
          Linux.close(fd);
        }
      }
      case SILENT_CONNECTIONS -> {
        List<UnixSeqpacketSocket> silent = new ArrayList<>();
        try {
          for (int i = 0; i < 100; i++) {
            silent.add(UnixSeqpacketSocket.connect(ShmAddress.defaultRendezvous(port)));
          }
          Thread.sleep(2000); // hold them (no hello) while the honest clients work
          return true;
        } finally {
          for (UnixSeqpacketSocket s : silent) {
            s.close();
          }
        }
      }
      case GARBAGE_RING -> {
        try (HostilePeer p = new HostilePeer(port)) {
          byte[] junk = new byte[4096];
          new Random(rounds.get()).nextBytes(junk);
          MemorySegment.copy(junk, 0, p.tx.data(), ValueLayout.JAVA_BYTE, 0, junk.length);
          p.txRingHeader.set(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET, 4096L);
          p.wake();
          return p.hungUpWithin(10_000);
        }
      }
      case BAD_TIMEOUTS -> {
        try (HostilePeer p = new HostilePeer(port)) {
          for (int i = 0; i < 50; i++) {
            int id = 2 * i + 1;
            p.startCall(id, Hardening.UNARY, Map.of("grpc-timeout", i % 2 == 0 ? "abc" : ""));
          }
          List<HostilePeer.Frame> frames = p.readUntil(f -> f.stream()
              .filter(x -> x.type() == FrameLayout.TYPE_RST_STREAM).count() == 50, 10_000);
          long resets = frames.stream().filter(x -> x.type() == FrameLayout.TYPE_RST_STREAM)
              .count();
          return resets == 50 && !p.hungUpWithin(10); // per stream, the connection lives
        }
      }
      case UNANSWERED_OFFERS -> {
        ShmTransportConfig small = ShmTransportConfig.defaults().toBuilder().sizes(
            ShmTransportConfig.DEFAULT_RING_CAPACITY, 256 << 10, 64L << 20).build();
        try (HostilePeer p = new HostilePeer(port, small)) {
          for (int i = 0; i < 4; i++) {
            int id = 2 * i + 1;
            p.startCall(id, Hardening.SERVER_STREAM, Map.of());
            p.sendMessage(id, Hardening.streamRequest(1, 1 << 20), true);
          }
          List<HostilePeer.Frame> frames = p.readUntil(f -> f.stream()
              .filter(x -> x.type() == FrameLayout.TYPE_TRAILERS).count() == 4, 20_000);
          return frames.stream().filter(x -> x.type() == FrameLayout.TYPE_TRAILERS).count() == 4;
        }
      }
      default -> throw new AssertionError(a);
    }
  }

  /** SEGMENT_ATTACH {@code first..first+count-1} with one memfd; mapped count, -1 on hang-up. */
  static int attachBatch(UnixSeqpacketSocket socket, int first, int count, int fd)
      throws Exception {
    byte[] msg = new byte[64];
    for (int id = first; id < first + count; id++) {
      int len = HandshakeMessage.encode(new HandshakeMessage.SegmentAttach(id, 4096), msg);
      socket.send(msg, len, fd);
    }
    byte[] in = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
    int accepted = 0;
    for (int answers = 0; answers < count; ) {
      int n = socket.receive(in, fds, 10_000);
      if (n < 0) {
        return -1;
      }
      if (HandshakeMessage.decode(in, n) instanceof HandshakeMessage.SegmentAck ack) {
        answers++;
        accepted += ack.accepted() ? 1 : 0;
      }
    }
    return accepted;
  }

  String summary() {
    StringBuilder b = new StringBuilder("attack rounds " + rounds.get() + ":");
    for (Attack a : Attack.values()) {
      b.append(' ').append(a).append(" repelled ").append(repelled[a.ordinal()].get())
          .append(" unexpected ").append(unexpected[a.ordinal()].get()).append(';');
    }
    synchronized (notes) {
      if (!notes.isEmpty()) {
        b.append(" notes: ").append(notes);
      }
    }
    return b.toString();
  }
}
