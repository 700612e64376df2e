package io.grpcshm.internal.transport;

import io.grpc.internal.WritableBuffer;
import io.grpcshm.internal.movement.BulkSession;

/** A small outgoing payload, copied into the ring inline when sent. */
final class HeapWritableBuffer implements WritableBuffer {
  final byte[] bytes;
  private int written;

  HeapWritableBuffer(int capacity) {
    this.bytes = new byte[capacity];
  }

  @Override
  public void write(byte[] src, int srcIndex, int length) {
    BulkSession.wrote(null); // bytes went to the heap: a bulk move cannot follow them
    System.arraycopy(src, srcIndex, bytes, written, length);
    written += length;
  }

  @Override
  public void write(byte b) {
    BulkSession.wrote(null);
    bytes[written++] = b;
  }

  @Override
  public int writableBytes() {
    return bytes.length - written;
  }

  @Override
  public int readableBytes() {
    return written;
  }

  @Override
  public void release() {}
}
