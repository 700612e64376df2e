package io.grpcshm.hardening;

import io.grpcshm.ShmAddress;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.RegionLayout;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.MailboxLayout;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingProducer;
import io.grpcshm.internal.transport.RawRecords;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A client that passes the real handshake and then writes frames by hand into the shared rings
 * (and reads the server's replies by hand), so it can break every rule of PROTOCOL.md.
 */
final class HostilePeer implements AutoCloseable {
  record Frame(int type, int flags, int streamId, byte[] body) {
    ByteBuffer le() {
      return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  final Handshakes.Established established;
  final RegionLayout layout;
  final MemorySegment txRingHeader;
  final RingProducer tx;
  final RingConsumer rx;
  final MemorySegment txPool;

  HostilePeer(int port) throws Exception {
    this(port, ShmTransportConfig.defaults());
  }

  HostilePeer(int port, ShmTransportConfig config) throws Exception {
    established = Handshakes.client(ShmAddress.defaultRendezvous(port), config);
    layout = established.layout();
    txRingHeader = layout.ringHeader(established.region(), true);
    tx = new RingProducer(txRingHeader, layout.ringData(established.region(), true),
        layout.ringCapacity());
    rx = new RingConsumer(layout.ringHeader(established.region(), false),
        layout.ringData(established.region(), false), layout.ringCapacity());
    txPool = established.region().asSlice(layout.clientToServerPoolOffset(), layout.poolSize());
  }

  static ByteBuffer le(int size) {
    return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
  }

  void write(int type, int flags, int streamId, byte[] body) {
    write(type, flags, 0, streamId, body);
  }

  void write(int type, int flags, int reserved, int streamId, byte[] body) {
    RawRecords.write(tx, type, flags, reserved, streamId, body);
    tx.wakeConsumer(this::wake);
  }

  /** Sends a WAKE message whether or not the server's loop announced sleep. */
  void wake() {
    established.socket().sendWake();
  }

  static byte[] requestHeaders(String path, Map<String, String> metadata) {
    byte[] p = path.getBytes(StandardCharsets.UTF_8);
    byte[] a = "localhost".getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = le(4096);
    b.putShort((short) p.length).put(p).putShort((short) a.length).put(a);
    b.putInt(metadata.size());
    for (var e : metadata.entrySet()) {
      byte[] k = e.getKey().getBytes(StandardCharsets.US_ASCII);
      byte[] v = e.getValue().getBytes(StandardCharsets.US_ASCII);
      b.putInt(k.length).put(k).putInt(v.length).put(v);
    }
    byte[] out = new byte[b.position()];
    b.flip().get(out);
    return out;
  }

  void startCall(int streamId, io.grpc.MethodDescriptor<?, ?> method, Map<String, String> md) {
    write(FrameLayout.TYPE_REQUEST_HEADERS, 0, streamId,
        requestHeaders("/" + method.getFullMethodName(), md));
  }

  /**
   * Opens a call on {@code streamId} that names reply mailbox {@code page} of our pool
   * (PROTOCOL.md §7.5), its state set to WAITING first; returns the page's offset in the pool.
   */
  long startCallWithMailbox(int streamId, int page, io.grpc.MethodDescriptor<?, ?> method) {
    long at = (long) page * MailboxLayout.SIZE;
    txPool.set(ValueLayout.JAVA_INT, at + MailboxLayout.STATE_OFFSET, MailboxLayout.STATE_WAITING);
    write(FrameLayout.TYPE_REQUEST_HEADERS, MailboxLayout.FLAG_REPLY_MAILBOX, page, streamId,
        requestHeaders("/" + method.getFullMethodName(), Map.of()));
    return at;
  }

  /** One gRPC length-prefixed message as a DATA_INLINE frame. */
  void sendMessage(int streamId, byte[] message, boolean endStream) {
    byte[] framed = grpcFrame(message);
    write(FrameLayout.TYPE_DATA_INLINE, endStream ? FrameLayout.FLAG_END_STREAM : 0, streamId,
        framed);
  }

  static byte[] grpcFrame(byte[] message) {
    return ByteBuffer.allocate(5 + message.length).put((byte) 0).putInt(message.length)
        .put(message).array();
  }

  void release(int segmentId, long offset) {
    write(FrameLayout.TYPE_RELEASE, 0, 0, le(16).putInt(segmentId).putInt(0).putLong(offset)
        .array());
  }

  /** Frames the server sent us, polled until {@code stop} says enough or the time is up. */
  List<Frame> readUntil(java.util.function.Predicate<List<Frame>> stop, long millis)
      throws InterruptedException {
    List<Frame> frames = new ArrayList<>();
    long deadline = System.currentTimeMillis() + millis;
    while (!stop.test(frames) && System.currentTimeMillis() < deadline) {
      int n = rx.poll((d, off, len) -> {
        byte[] body = new byte[len - FrameLayout.HEADER_LENGTH];
        MemorySegment.copy(d, ValueLayout.JAVA_BYTE, off + FrameLayout.HEADER_LENGTH, body, 0,
            body.length);
        frames.add(new Frame(d.get(ValueLayout.JAVA_BYTE, off + FrameLayout.TYPE_OFFSET) & 0xff,
            d.get(ValueLayout.JAVA_BYTE, off + FrameLayout.FLAGS_OFFSET) & 0xff,
            d.get(ValueLayout.JAVA_INT_UNALIGNED, off + FrameLayout.STREAM_ID_OFFSET), body));
      }, 64);
      if (n == 0) {
        Thread.sleep(1);
      }
    }
    return frames;
  }

  static boolean has(List<Frame> frames, int type, int streamId) {
    return frames.stream().anyMatch(f -> f.type == type && f.streamId == streamId);
  }

  /** True if the server hung up (socket EOF) within {@code millis}. */
  boolean hungUpWithin(int millis) throws IOException {
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
    long deadline = System.currentTimeMillis() + millis;
    while (true) {
      int left = (int) (deadline - System.currentTimeMillis());
      if (left <= 0) {
        return false;
      }
      try {
        if (established.socket().receive(buf, fds, left) == -1) {
          return true;
        }
      } catch (java.net.SocketTimeoutException e) {
        return false;
      }
    }
  }

  @Override
  public void close() {
    established.socket().close();
    established.mapping().close();
  }
}
