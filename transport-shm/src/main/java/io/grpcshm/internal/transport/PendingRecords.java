package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.FrameLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Frames waiting for ring space, encoded back to back in one reused array: queuing a frame
 * costs a copy into it, not an array of its own (a stream sending as fast as flow control allows
 * queues most of its frames). Records are our own encoding, never shared memory, so their
 * lengths are trusted. Not thread-safe: {@link FrameSender} holds its lock around every call.
 */
final class PendingRecords {
  private static final int INITIAL_BYTES = 16 * 1024;
  /** An empty queue whose array grew beyond this gives it back when the connection idles. */
  private static final int KEPT_BYTES = 64 * 1024;

  private byte[] bytes;
  private MemorySegment segment;
  /** Start of the oldest record, and end of the newest. */
  private int head;
  private int tail;

  boolean isEmpty() {
    return head == tail;
  }

  /**
   * Room at the end for a record of {@code length} bytes: returns its offset in {@link
   * #segment()}; the caller encodes it there, then calls {@link #append}.
   */
  int reserve(int length) {
    if (bytes == null) {
      bytes = new byte[Math.max(INITIAL_BYTES, length)];
      segment = MemorySegment.ofArray(bytes);
    } else if (bytes.length - tail < length) {
      int live = tail - head;
      if (head > 0 && bytes.length - live >= length && live <= bytes.length / 2) {
        System.arraycopy(bytes, head, bytes, 0, live); // slide the live records to the front
      } else {
        byte[] grown = new byte[Math.max(bytes.length * 2, live + length)];
        System.arraycopy(bytes, head, grown, 0, live);
        bytes = grown;
        segment = MemorySegment.ofArray(bytes);
      }
      head = 0;
      tail = live;
    }
    return tail;
  }

  /** The array {@link #reserve} returned an offset into. */
  MemorySegment segment() {
    return segment;
  }

  /** The record encoded at the offset {@link #reserve} returned is now queued. */
  void append(int length) {
    tail += length;
  }

  /** Length of the oldest record (the queue is not empty). */
  int headLength() {
    return segment.get(ValueLayout.JAVA_INT_UNALIGNED, head + FrameLayout.LENGTH_OFFSET);
  }

  /** Frame type of the oldest record (the queue is not empty). */
  int headType() {
    return bytes[head + FrameLayout.TYPE_OFFSET];
  }

  /** Copies the oldest record to {@code dst} at {@code at} and removes it. */
  void moveHeadTo(MemorySegment dst, long at, int length) {
    MemorySegment.copy(segment, head, dst, at, length);
    head += length;
    if (head == tail) {
      head = 0;
      tail = 0;
    }
  }

  void clear() {
    head = 0;
    tail = 0;
  }

  /** An empty queue gives back an array grown beyond {@link #KEPT_BYTES} (idle connection). */
  void trim() {
    if (isEmpty() && bytes != null && bytes.length > KEPT_BYTES) {
      bytes = null;
      segment = null;
    }
  }

  /** Bytes queued (tests). */
  int queuedBytes() {
    return tail - head;
  }

  @Override
  public String toString() {
    return "PendingRecords[" + (tail - head) + " of " + (bytes == null ? 0 : bytes.length)
        + " bytes]";
  }
}
