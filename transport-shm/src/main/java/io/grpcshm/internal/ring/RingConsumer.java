package io.grpcshm.internal.ring;

import static io.grpcshm.internal.ring.RingDescriptor.HEAD_OFFSET;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The reading side of a ring. One thread only. Every value read from the ring is read once into a
 * local and checked before use; a violation throws {@link RingCorruptedException}.
 */
public final class RingConsumer extends Ring {
  /** Receives one validated record: {@code length} bytes at {@code offset} of {@code data}. */
  @FunctionalInterface
  public interface RecordHandler {
    void onRecord(MemorySegment data, int offset, int length);
  }

  private long head;

  public RingConsumer(MemorySegment ring, int capacity) {
    super(ring, capacity);
    this.head = (long) LONG.getVolatile(header, (long) HEAD_OFFSET);
  }

  /** A {@code capacity}-byte ring whose header and data area lie apart (PROTOCOL.md §4). */
  public RingConsumer(MemorySegment header, MemorySegment data, int capacity) {
    super(header, data, capacity);
    this.head = (long) LONG.getVolatile(header, (long) HEAD_OFFSET);
  }

  /** How far we have consumed (our head). */
  public long position() {
    return head;
  }

  /** True if the producer has published records we have not consumed. */
  public boolean hasRecords() {
    return tailAcquire() != head;
  }

  /**
   * Hands up to {@code limit} records to {@code handler}, freeing each one's space as soon as the
   * handler returns (the handler must copy what it keeps). Returns the number of records.
   */
  public int poll(RecordHandler handler, int limit) {
    long tail = tailAcquire();
    if (tail == head) {
      return 0;
    }
    // Our starting head came from shared memory (the peer could write it before the connection
    // was established): positions must stay record-aligned.
    if ((head & (RingDescriptor.RECORD_ALIGNMENT - 1)) != 0) {
      throw new RingCorruptedException("ring head " + head + " is not record-aligned");
    }
    if (tail < head || tail - head > capacity) {
      throw new RingCorruptedException(
          "peer moved ring tail to " + tail + " with head at " + head);
    }
    int count = 0;
    while (head < tail && count < limit) {
      int index = (int) (head & mask);
      long available = tail - head;
      int toEnd = capacity - index;
      if (available < RingDescriptor.RECORD_ALIGNMENT) { // every record fills at least one unit
        throw new RingCorruptedException("truncated record header at " + head);
      }
      int length = data.get(ValueLayout.JAVA_INT, index);
      int type = data.get(ValueLayout.JAVA_BYTE, index + RecordLayout.TYPE_OFFSET) & 0xff;
      if (type == RecordLayout.TYPE_PADDING) {
        if (length != toEnd || available < toEnd) {
          throw new RingCorruptedException("bad padding record length " + length + " at " + head);
        }
        head += toEnd;
        LONG.setRelease(header, (long) HEAD_OFFSET, head);
        continue;
      }
      if (length < RecordLayout.HEADER_LENGTH || length > toEnd || length > available) {
        throw new RingCorruptedException(
            "record length " + length + " out of bounds at " + head + " (available "
                + Math.min(available, toEnd) + ")");
      }
      int aligned = RingDescriptor.align(length);
      if (aligned > toEnd || aligned > available) {
        throw new RingCorruptedException("record of " + length + " overruns the ring");
      }
      handler.onRecord(data, index, length);
      head += aligned;
      LONG.setRelease(header, (long) HEAD_OFFSET, head);
      count++;
    }
    return count;
  }

  /**
   * Announces sleep (the producer then wakes us with its next record); the caller must re-check
   * for work afterwards, and {@link #cancelSleep} once awake.
   */
  public void prepareToSleep() {
    setConsumerSleeping(true);
  }

  public void cancelSleep() {
    setConsumerSleeping(false);
  }

  /** True (and cleared) if the producer queued frames for lack of space and wants a wake-up. */
  public boolean takeProducerWaiting() {
    return clearProducerWaiting();
  }
}
