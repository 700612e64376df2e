package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.internal.WritableBuffer;

/**
 * A small outgoing payload, copied into the ring inline when sent. Buffers are recycled: once its
 * bytes are in the ring (or the frame is dropped) a buffer goes back to the releasing thread's
 * one-slot cache, so a thread that sends small messages allocates none per message. A frame held
 * back by flow control is released by the thread that later sends it (the event loop, on the
 * peer's WINDOW_UPDATE): that buffer goes to a process-wide pool of its size class instead, where
 * the sending thread finds it again. grpc keeps at most its on-ready threshold (32 KiB) queued per
 * stream, so a class holds a few dozen buffers at most.
 */
final class HeapWritableBuffer implements WritableBuffer {
  /** Buffers larger than this are not cached (the inline threshold's default is 16 KiB). */
  static final int MAX_CACHED_CAPACITY = 16 * 1024;
  /** The smallest buffer handed out: streams of unknown length ask per write, grpc grows it. */
  static final int MIN_CAPACITY = InlineBuffers.MIN_CLASS_BYTES;

  private static final ThreadLocal<HeapWritableBuffer> CACHE = new ThreadLocal<>();
  private static final int MIN_SHIFT = Integer.numberOfTrailingZeros(MIN_CAPACITY);
  /** Released buffers by size class (powers of two, MIN_CAPACITY to MAX_CACHED_CAPACITY). */
  private static final Shelf[] SHELVES =
      new Shelf[Integer.numberOfTrailingZeros(MAX_CACHED_CAPACITY) - MIN_SHIFT + 1];
  /** Bytes of released buffers a size class keeps. */
  static final int SHELF_BYTES = 256 * 1024;

  static {
    for (int i = 0; i < SHELVES.length; i++) {
      SHELVES[i] = new Shelf(Math.max(16, SHELF_BYTES / (MIN_CAPACITY << i)));
    }
  }

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
    if (wanted > MAX_CACHED_CAPACITY) {
      return new HeapWritableBuffer(wanted);
    }
    int sizeClass = classOf(wanted);
    HeapWritableBuffer shelved = SHELVES[sizeClass].take();
    if (shelved != null) {
      shelved.recycled = false;
      return shelved;
    }
    return new HeapWritableBuffer(MIN_CAPACITY << sizeClass);
  }

  /**
   * The size class whose buffers hold {@code bytes} (MIN_CAPACITY to MAX_CACHED_CAPACITY): the
   * same powers of two as the received payloads' classes.
   */
  static int classOf(int bytes) {
    return InlineBuffers.classOf(bytes);
  }

  /** Empties the shelf of {@code bytes}'s size class (tests: other tests leave buffers there). */
  static void emptyShelf(int bytes) {
    Shelf shelf = SHELVES[classOf(bytes)];
    while (shelf.take() != null) {
      // dropped: garbage, as before pooling
    }
  }

  /** Buffers on the shelf of {@code bytes}'s size class (tests). */
  static int shelved(int bytes) {
    return SHELVES[classOf(bytes)].size();
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
    if (bytes.length > MAX_CACHED_CAPACITY) {
      return;
    }
    HeapWritableBuffer cached = CACHE.get();
    HeapWritableBuffer shelve = this;
    if (cached == null || cached.bytes.length < bytes.length) {
      CACHE.set(this);
      shelve = cached;
    }
    if (shelve != null && Integer.bitCount(shelve.bytes.length) == 1) {
      SHELVES[classOf(shelve.bytes.length)].offer(shelve);
    }
  }

  /** Released buffers of one size class: a bounded stack. */
  private static final class Shelf {
    @GuardedBy("this") private final HeapWritableBuffer[] buffers;
    @GuardedBy("this") private int count;

    Shelf(int capacity) {
      this.buffers = new HeapWritableBuffer[capacity];
    }

    synchronized HeapWritableBuffer take() {
      if (count == 0) {
        return null;
      }
      HeapWritableBuffer b = buffers[--count];
      buffers[count] = null;
      return b;
    }

    synchronized void offer(HeapWritableBuffer b) {
      if (count < buffers.length) {
        buffers[count++] = b; // else: garbage, as before pooling
      }
    }

    synchronized int size() {
      return count;
    }
  }
}
