package io.grpcshm.internal.transport;

import io.grpc.internal.WritableBuffer;

/**
 * A small outgoing payload, copied into the ring inline when sent. Buffers are recycled: once its
 * bytes are in the ring (or the frame is dropped) a buffer goes back to the releasing thread's
 * one-slot cache, so a thread that sends small messages allocates none per message.
 */
final class HeapWritableBuffer implements WritableBuffer {
  /** Buffers larger than this are not cached (the inline threshold's default is 16 KiB). */
  static final int MAX_CACHED_CAPACITY = 16 * 1024;
  /** The smallest buffer handed out: streams of unknown length ask per write, grpc grows it. */
  static final int MIN_CAPACITY = 64;

  private static final ThreadLocal<HeapWritableBuffer> CACHE = new ThreadLocal<>();

  final byte[] bytes;
  private int written;
  private boolean recycled;

  private HeapWritableBuffer(int capacity) {
    this.bytes = new byte[capacity];
  }

  /** A buffer of at least {@code capacity} bytes, the calling thread's cached one if it fits. */
  static HeapWritableBuffer obtain(int capacity) {
    int wanted = Math.max(capacity, MIN_CAPACITY);
    HeapWritableBuffer cached = CACHE.get();
    if (cached != null && cached.bytes.length >= wanted) {
      CACHE.set(null);
      cached.recycled = false;
      return cached;
    }
    return new HeapWritableBuffer(wanted);
  }

  @Override
  public void write(byte[] src, int srcIndex, int length) {
    System.arraycopy(src, srcIndex, bytes, written, length);
    written += length;
  }

  @Override
  public void write(byte b) {
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

  /** Done with the bytes (sent or dropped): the buffer may serve the next message. */
  @Override
  public void release() {
    if (recycled) {
      return;
    }
    recycled = true;
    written = 0;
    if (bytes.length <= MAX_CACHED_CAPACITY) {
      HeapWritableBuffer cached = CACHE.get();
      if (cached == null || cached.bytes.length < bytes.length) {
        CACHE.set(this);
      }
    }
  }
}
