package io.grpcshm.internal.ring;

import static io.grpcshm.internal.ring.RingDescriptor.HEAD_OFFSET;
import static io.grpcshm.internal.ring.RingDescriptor.TAIL_OFFSET;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The writing side of a ring. Not thread-safe: the connection serialises producers with its own
 * lock. Usage: {@code long at = claim(len)}; write the record at {@code data().asSlice(at)};
 * {@code commit(len)}; then {@code wakeConsumer()}.
 */
public final class RingProducer extends Ring {
  private long tail;
  private long cachedHead;
  private long claimedLength = -1;

  public RingProducer(MemorySegment ring, int capacity) {
    super(ring, capacity);
    this.tail = (long) LONG.getVolatile(header, (long) TAIL_OFFSET);
    this.cachedHead = tail;
  }

  /** A {@code capacity}-byte ring whose header and data area lie apart (PROTOCOL.md §4). */
  public RingProducer(MemorySegment header, MemorySegment data, int capacity) {
    super(header, data, capacity);
    this.tail = (long) LONG.getVolatile(header, (long) TAIL_OFFSET);
    this.cachedHead = tail;
  }

  /** Largest record this ring accepts; bigger payloads must be split by the caller. */
  public int maxRecordLength() {
    return RingDescriptor.maxRecordLength(capacity);
  }

  /**
   * Reserves space for a record of {@code length} bytes (header included) and returns its offset
   * in {@link #data()}, or -1 when the consumer has not freed enough space yet.
   */
  public long claim(int length) {
    if (length < RecordLayout.HEADER_LENGTH || length > maxRecordLength()) {
      throw new IllegalArgumentException("bad record length " + length);
    }
    if ((tail & (RingDescriptor.RECORD_ALIGNMENT - 1)) != 0) {
      // Our starting tail came from shared memory: the peer wrote it before we started.
      throw new RingCorruptedException("ring tail " + tail + " is not record-aligned");
    }
    int aligned = RingDescriptor.align(length);
    int index = (int) (tail & mask);
    int toEnd = capacity - index;
    int needed = aligned <= toEnd ? aligned : toEnd + aligned;
    if (tail + needed - cachedHead > capacity) {
      cachedHead = readHead();
      if (tail + needed - cachedHead > capacity) {
        return -1;
      }
    }
    if (aligned > toEnd) {
      // Pad to the end so that no record ever wraps.
      data.set(ValueLayout.JAVA_INT, index, toEnd);
      data.set(ValueLayout.JAVA_BYTE, index + RecordLayout.TYPE_OFFSET, (byte) RecordLayout.TYPE_PADDING);
      tail += toEnd;
      index = 0;
    }
    claimedLength = length;
    return index;
  }

  /** Publishes the claimed record; its bytes become visible to the consumer with the tail. */
  public void commit() {
    if (claimedLength < 0) {
      throw new IllegalStateException("commit without claim");
    }
    tail += RingDescriptor.align((int) claimedLength);
    claimedLength = -1;
    LONG.setRelease(header, (long) TAIL_OFFSET, tail);
  }

  /** True if a record of {@code length} would fit right now. */
  public boolean hasSpaceFor(int length) {
    int aligned = RingDescriptor.align(length);
    int toEnd = capacity - (int) (tail & mask);
    int needed = aligned <= toEnd ? aligned : toEnd + aligned;
    return tail + needed - readHead() <= capacity;
  }

  public MemorySegment data() {
    return data;
  }

  /** Tells the consumer side that frames are queued here for lack of space. */
  public void announceWaiting(boolean waiting) {
    setProducerWaiting(waiting);
  }

  private long readHead() {
    long head = (long) LONG.getAcquire(header, (long) HEAD_OFFSET);
    // The consumer is untrusted: its position must lie between the last one we saw and our tail.
    if (head < cachedHead || head > tail) {
      throw new RingCorruptedException(
          "peer moved ring head to " + head + " (valid range " + cachedHead + ".." + tail + ")");
    }
    return head;
  }
}
