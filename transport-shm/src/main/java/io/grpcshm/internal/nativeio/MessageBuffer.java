package io.grpcshm.internal.nativeio;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Native memory for one {@code sendmsg} or {@code recvmsg} on a {@link UnixSeqpacketSocket}: the
 * message, its control data, the {@code msghdr} and {@code iovec}, an errno capture and a
 * {@code pollfd}. Taken for the length of one operation and given back, from a small
 * process-wide pool, so that a socket owns no native memory of its own.
 *
 * <p>Why not a buffer per socket: a connection's control socket carries its handshake and then
 * the odd WAKE or segment message, yet per-socket buffers cost ~9 KiB of zeroed native memory on
 * each side of every connection (90 MB per side at 10,000 connections), three first-touched pages
 * per connect (20-30 us each on a virtual machine), and a shared arena whose close stops every
 * Java thread for a moment.
 */
final class MessageBuffer {
  /** Largest message plus one spare byte, so that an oversize message is detected. */
  static final long PAYLOAD_CAPACITY = UnixSeqpacketSocket.MAX_MESSAGE + 1;
  private static final long CONTROL_OFFSET = align(PAYLOAD_CAPACITY, 16);
  private static final long HDR_OFFSET = CONTROL_OFFSET + UnixSeqpacketSocket.CMSG_SPACE_MAX;
  private static final long IOV_OFFSET = HDR_OFFSET + UnixSeqpacketSocket.MSGHDR_SIZE;
  private static final long CAPTURE_OFFSET =
      align(IOV_OFFSET + UnixSeqpacketSocket.IOV_SIZE, Linux.CAPTURE_LAYOUT.byteAlignment());
  private static final long POLLFD_OFFSET =
      align(CAPTURE_OFFSET + Linux.CAPTURE_LAYOUT.byteSize(), 8);
  private static final long SIZE = POLLFD_OFFSET + 8;

  /** Buffers kept for reuse; more in use at once are made, and dropped when given back. */
  private static final int SPARES = 32;
  private static final AtomicReferenceArray<MessageBuffer> SPARE =
      new AtomicReferenceArray<>(SPARES);

  final MemorySegment payload;
  final MemorySegment control;
  final MemorySegment hdr;
  final MemorySegment iov;
  final MemorySegment capture;
  final MemorySegment pollFd;

  private MessageBuffer() {
    // Freed by the garbage collector once no socket operation and no spare slot holds it.
    MemorySegment block = Arena.ofAuto().allocate(SIZE, 16);
    payload = block.asSlice(0, PAYLOAD_CAPACITY);
    control = block.asSlice(CONTROL_OFFSET, UnixSeqpacketSocket.CMSG_SPACE_MAX);
    hdr = block.asSlice(HDR_OFFSET, UnixSeqpacketSocket.MSGHDR_SIZE);
    iov = block.asSlice(IOV_OFFSET, UnixSeqpacketSocket.IOV_SIZE);
    capture = block.asSlice(CAPTURE_OFFSET, Linux.CAPTURE_LAYOUT.byteSize());
    pollFd = block.asSlice(POLLFD_OFFSET, 8);
  }

  private static long align(long n, long to) {
    return (n + to - 1) & -to;
  }

  /** A buffer for the caller's use alone, until it {@link #giveBack}s it. */
  static MessageBuffer take() {
    for (int i = 0; i < SPARES; i++) {
      if (SPARE.get(i) != null) {
        MessageBuffer b = SPARE.getAndSet(i, null);
        if (b != null) {
          return b;
        }
      }
    }
    return new MessageBuffer();
  }

  /** Returns a buffer taken with {@link #take}; the caller must not touch it afterwards. */
  void giveBack() {
    for (int i = 0; i < SPARES; i++) {
      if (SPARE.get(i) == null && SPARE.compareAndSet(i, null, this)) {
        return;
      }
    }
    // Every slot holds a spare: this one is left to the garbage collector.
  }
}
