package io.grpcshm.internal.ring;

/**
 * Every offset of one single-producer/single-consumer frame ring, in one place.
 *
 * <p>A ring is a header of {@link #HEADER_LENGTH} bytes and a data area whose capacity is a power
 * of two (a connection's region keeps both rings' headers in its first page and the data areas
 * apart, PROTOCOL.md §4; tests may put the data area right after the header). Positions are 64-bit byte counters that only grow; {@code position & (capacity
 * - 1)} is the index into the data area. Each field the two sides write lives on its own cache
 * line so that the producer and the consumer never share a line they both write.
 *
 * <pre>
 *   0   tail             i64  producer position; a release-store publishes every record before it
 *   64  head             i64  consumer position; a release-store frees the space before it
 *   128 consumerSleeping i32  1 while the consumer is asleep (or about to be): wake it (WAKE message)
 *   192 producerWaiting  i32  1 while the producer has frames queued for lack of space
 * </pre>
 *
 * <p>Records are 8-byte aligned; see {@link RecordLayout} for their header. A record never wraps:
 * when one does not fit before the end of the data area the producer writes a padding record to
 * the end and starts again at index 0.
 */
public final class RingDescriptor {
  private RingDescriptor() {}

  public static final int TAIL_OFFSET = 0;
  public static final int HEAD_OFFSET = 64;
  public static final int CONSUMER_SLEEPING_OFFSET = 128;
  public static final int PRODUCER_WAITING_OFFSET = 192;
  public static final int HEADER_LENGTH = 256;

  public static final int RECORD_ALIGNMENT = 8;
  public static final int MIN_CAPACITY = 4096;
  public static final int MAX_CAPACITY = 1 << 30;
  /**
   * Largest record is this fraction of the capacity, so a record always fits once the consumer
   * frees a quarter of the ring, whatever the padding at the end costs.
   */
  public static final int MAX_RECORD_FRACTION = 4;

  /** Bytes a ring of {@code capacity} occupies with its data area right after its header. */
  public static long totalLength(int capacity) {
    return HEADER_LENGTH + (long) capacity;
  }

  public static boolean isValidCapacity(long capacity) {
    return capacity >= MIN_CAPACITY && capacity <= MAX_CAPACITY && Long.bitCount(capacity) == 1;
  }

  /** Largest record a ring of {@code capacity} accepts; bigger payloads are split by the user. */
  public static int maxRecordLength(int capacity) {
    return capacity / MAX_RECORD_FRACTION;
  }

  public static int align(int length) {
    return (length + RECORD_ALIGNMENT - 1) & -RECORD_ALIGNMENT;
  }
}
