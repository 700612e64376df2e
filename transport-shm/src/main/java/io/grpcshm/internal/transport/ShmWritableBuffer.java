package io.grpcshm.internal.transport;

import io.grpc.internal.WritableBuffer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An outgoing payload written by grpc's framer straight into shared memory (the one copy on the
 * send side). Ownership passes to the peer when the transport sends it; until then
 * {@link #release()} returns the extent to our pool.
 */
final class ShmWritableBuffer implements WritableBuffer {
  final ShmConnection connection;
  final int segmentId;
  final long offset;
  private final MemorySegment target;
  private int written;
  private boolean handedOver;
  private boolean released;

  ShmWritableBuffer(ShmConnection connection, int segmentId, long offset, MemorySegment target) {
    this.connection = connection;
    this.segmentId = segmentId;
    this.offset = offset;
    this.target = target;
  }

  @Override
  public void write(byte[] src, int srcIndex, int length) {
    if (length > writableBytes()) {
      throw new IndexOutOfBoundsException("write of " + length + " with " + writableBytes() + " free");
    }
    ParallelCopy.copy(src, srcIndex, target, written, length);
    written += length;
  }

  @Override
  public void write(byte b) {
    if (writableBytes() < 1) {
      throw new IndexOutOfBoundsException("buffer full");
    }
    target.set(ValueLayout.JAVA_BYTE, written++, b);
  }

  @Override
  public int writableBytes() {
    return (int) (target.byteSize() - written);
  }

  @Override
  public int readableBytes() {
    return written;
  }

  /** Marks the extent as now owned by the peer (sent in a DATA_BLOCK frame). */
  void handOver() {
    handedOver = true;
  }

  @Override
  public void release() {
    if (!handedOver && !released) {
      released = true;
      connection.freeTxExtent(segmentId, offset);
    }
  }
}
