package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.FrameCodec;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.ring.RingProducer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Tests' hand-written peers: one frame written straight into a ring, as PROTOCOL.md lays it out. */
public final class RawRecords {
  private RawRecords() {}

  /**
   * Reads (and drops) the peer's WAKE messages until it hangs up, or 20 s pass without one: a
   * hand-written server stays connected until the client under test closes by itself.
   */
  static void awaitHangUp(UnixSeqpacketSocket socket) throws java.io.IOException {
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
    while (socket.receive(buf, fds, 20_000) != -1) {
      // WAKE messages
    }
  }

  /** Claims, encodes and commits one frame (no wake-up: the caller decides). */
  public static void write(RingProducer tx, int type, int flags, int streamId, byte[] body) {
    write(tx, type, flags, 0, streamId, body);
  }

  /** As above, with the header's reserved u16 (a reply mailbox's page, PROTOCOL.md §7.5). */
  public static void write(RingProducer tx, int type, int flags, int reserved, int streamId,
      byte[] body) {
    int length = FrameLayout.HEADER_LENGTH + body.length;
    long at = tx.claim(length);
    if (at < 0) {
      throw new IllegalStateException("ring full");
    }
    MemorySegment d = tx.data();
    d.set(ValueLayout.JAVA_INT_UNALIGNED, at, length);
    d.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    d.set(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET, (byte) flags);
    d.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + FrameLayout.RESERVED_OFFSET, (short) reserved);
    d.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET, streamId);
    MemorySegment.copy(body, 0, d, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH,
        body.length);
    tx.commit();
  }

  /** A copy of {@code length} bytes of shared memory at {@code at}. */
  static byte[] bytes(MemorySegment d, long at, int length) {
    byte[] b = new byte[length];
    MemorySegment.copy(d, ValueLayout.JAVA_BYTE, at, b, 0, length);
    return b;
  }

  /** A metadata block (PROTOCOL.md §6.2) as a frame body. */
  static byte[] metadata(io.grpc.Metadata md) {
    FrameCodec.EncodedMetadata encoded = FrameCodec.prepare(md);
    java.nio.ByteBuffer body = FrameCodec.newBody(encoded.bodyLength());
    FrameCodec.putMetadata(body, encoded);
    return java.util.Arrays.copyOf(body.array(), encoded.bodyLength());
  }

  /** One gRPC length-prefixed message (uncompressed). */
  static byte[] grpcMessage(byte[] message) {
    return java.nio.ByteBuffer.allocate(5 + message.length).put((byte) 0)
        .putInt(message.length).put(message).array();
  }
}
