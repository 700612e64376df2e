package io.grpcshm.internal.transport;

import io.grpc.internal.AbstractReadableBuffer;
import io.grpc.internal.ReadableBuffer;
import io.grpcshm.internal.nativeio.SharedMapping;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * A view of received payload bytes in shared memory. grpc's deframer reads the message straight
 * from here (no copy into the heap by the transport); slices share the extent's lease.
 */
final class ShmReadableBuffer extends AbstractReadableBuffer {
  private static final int COPY_CHUNK = 64 * 1024;
  private final MemorySegment bytes;
  private final RxLease lease;
  /** The mapping {@link #bytes} belong to: told when a raw view escapes. */
  private final SharedMapping mapping;
  private long position;
  private long mark;
  private boolean closed;

  ShmReadableBuffer(MemorySegment bytes, RxLease lease, SharedMapping mapping) {
    this.bytes = bytes;
    this.lease = lease;
    this.mapping = mapping;
  }

  @Override
  public int readableBytes() {
    return (int) (bytes.byteSize() - position);
  }

  private void check(int length) {
    if (length < 0 || length > readableBytes()) {
      throw new IndexOutOfBoundsException(
          "read of " + length + " bytes with " + readableBytes() + " readable");
    }
  }

  @Override
  public int readUnsignedByte() {
    check(1);
    return bytes.get(ValueLayout.JAVA_BYTE, position++) & 0xff;
  }

  @Override
  public void skipBytes(int length) {
    check(length);
    position += length;
  }

  @Override
  public void readBytes(byte[] dest, int destOffset, int length) {
    check(length);
    MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, position, dest, destOffset, length);
    position += length;
  }

  @Override
  public void readBytes(OutputStream dest, int length) throws IOException {
    check(length);
    byte[] chunk = new byte[Math.min(length, COPY_CHUNK)];
    while (length > 0) {
      int n = Math.min(length, chunk.length);
      readBytes(chunk, 0, n);
      dest.write(chunk, 0, n);
      length -= n;
    }
  }

  @Override
  public ReadableBuffer readBytes(int length) {
    check(length);
    ShmReadableBuffer slice =
        new ShmReadableBuffer(bytes.asSlice(position, length), lease.retain(), mapping);
    position += length;
    return slice;
  }

  @Override
  public boolean markSupported() {
    return true;
  }

  @Override
  public void mark() {
    mark = position;
  }

  @Override
  public void reset() {
    position = mark;
  }

  @Override
  public boolean byteBufferSupported() {
    return true;
  }

  /**
   * A direct view of the unread bytes. Its address may be read raw (protobuf's Unsafe decoder)
   * after the lease ends or the connection closes, so the mapping learns that it must not be
   * unmapped under such a reader (see {@link SharedMapping}).
   */
  @Override
  public ByteBuffer getByteBuffer() {
    mapping.markAliased();
    return bytes.asSlice(position).asByteBuffer().asReadOnlyBuffer();
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      lease.release();
    }
  }
}
