package io.grpcshm.internal.ring;

import static io.grpcshm.internal.ring.RingDescriptor.CONSUMER_SLEEPING_OFFSET;
import static io.grpcshm.internal.ring.RingDescriptor.HEAD_OFFSET;
import static io.grpcshm.internal.ring.RingDescriptor.PRODUCER_WAITING_OFFSET;
import static io.grpcshm.internal.ring.RingDescriptor.TAIL_OFFSET;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * Shared parts of a ring view: the header words and the sleep announcement of the consumer.
 * {@link RingProducer} and {@link RingConsumer} are the two views; each side of a connection holds
 * a producer over one ring and a consumer over the other.
 */
abstract class Ring {
  static final VarHandle LONG = ValueLayout.JAVA_LONG.varHandle();
  static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

  final MemorySegment header;
  final MemorySegment data;
  final int capacity;
  final int mask;

  /** A ring whose header is directly followed by its data area, in one segment. */
  Ring(MemorySegment ring, int capacity) {
    this(checkedWhole(ring, capacity).asSlice(0, RingDescriptor.HEADER_LENGTH),
        ring.asSlice(RingDescriptor.HEADER_LENGTH, capacity), capacity);
  }

  private static MemorySegment checkedWhole(MemorySegment ring, int capacity) {
    if (!RingDescriptor.isValidCapacity(capacity)) {
      throw new IllegalArgumentException("ring capacity must be a power of two: " + capacity);
    }
    if (ring.byteSize() < RingDescriptor.totalLength(capacity)) {
      throw new IllegalArgumentException("segment too small for ring of " + capacity);
    }
    return ring;
  }

  /** A ring whose header and data area lie apart (a connection's region, PROTOCOL.md §4). */
  Ring(MemorySegment header, MemorySegment data, int capacity) {
    if (!RingDescriptor.isValidCapacity(capacity)) {
      throw new IllegalArgumentException("ring capacity must be a power of two: " + capacity);
    }
    if (header.byteSize() < RingDescriptor.HEADER_LENGTH || data.byteSize() < capacity) {
      throw new IllegalArgumentException("segment too small for ring of " + capacity);
    }
    this.header = header.asSlice(0, RingDescriptor.HEADER_LENGTH);
    this.data = data.asSlice(0, capacity);
    this.capacity = capacity;
    this.mask = capacity - 1;
  }

  final long tailAcquire() {
    return (long) LONG.getAcquire(header, (long) TAIL_OFFSET);
  }

  final long headAcquire() {
    return (long) LONG.getAcquire(header, (long) HEAD_OFFSET);
  }

  /**
   * Wakes the consumer if it announced that it sleeps: claims the announcement (CAS 1 -> 0), so
   * exactly one producer-side call per sleep pays for {@code waker}. Cheap (one volatile read)
   * otherwise.
   */
  public final void wakeConsumer(Runnable waker) {
    // Order our earlier release-store (tail, or head) before reading the flag: a store followed
    // by a load is the one reordering x86 does, and it would lose the wake-up.
    VarHandle.fullFence();
    if ((int) INT.getVolatile(header, (long) CONSUMER_SLEEPING_OFFSET) != 0
        && INT.compareAndSet(header, (long) CONSUMER_SLEEPING_OFFSET, 1, 0)) {
      waker.run();
    }
  }

  final void setConsumerSleeping(boolean sleeping) {
    INT.setVolatile(header, (long) CONSUMER_SLEEPING_OFFSET, sleeping ? 1 : 0);
    VarHandle.fullFence(); // the flag must be visible before we re-check for records
  }

  final void setProducerWaiting(boolean waiting) {
    INT.setVolatile(header, (long) PRODUCER_WAITING_OFFSET, waiting ? 1 : 0);
    VarHandle.fullFence(); // visible before we re-check for space
  }

  /** Clears the producer-waiting flag; true if it was set (so the caller should wake it). */
  boolean clearProducerWaiting() {
    VarHandle.fullFence(); // our head release-store first, then the flag read
    return (int) INT.getVolatile(header, (long) PRODUCER_WAITING_OFFSET) != 0
        && INT.compareAndSet(header, (long) PRODUCER_WAITING_OFFSET, 1, 0);
  }

  /** The producer's published position (records up to it are written). */
  public final long tailPosition() {
    return tailAcquire();
  }

  public final int capacity() {
    return capacity;
  }
}
