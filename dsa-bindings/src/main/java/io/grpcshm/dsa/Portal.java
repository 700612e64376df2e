package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/** Where descriptors go: a DSA work queue (write() on its char device) or the software engine. */
interface Portal {
  /** {@link #completionTimeoutFloorNanos()} of a device. */
  long DEVICE_TIMEOUT_FLOOR_NANOS = 100_000_000L;
  int ACCEPTED = 0;
  /** Queue full (EAGAIN/EBUSY, or a full software queue): try again later. */
  int RETRY = 1;
  /** The kernel refused a BATCH descriptor (user batches unsafe on this device). */
  int BATCH_UNSUPPORTED = 2;

  /** Submits the 64 bytes of {@code desc}; ACCEPTED, RETRY, BATCH_UNSUPPORTED or -errno. */
  int submit(MemorySegment desc);

  long maxTransferSize();

  int maxBatchSize();

  /** Whether the CC (cache control) flag is meaningful. */
  boolean cacheControl();

  /** How many descriptors may be outstanding (a dedicated WQ drops what overflows it). */
  int maxInFlight();

  String describe();

  /**
   * Least time a descriptor may go without its completion record before the mover gives up on
   * it (the bound is this or 50x the calibrated prediction, whichever is longer). For a device
   * 100 ms: a generous guess made without hardware, to be checked on the first DSA host.
   */
  default long completionTimeoutFloorNanos() { return DEVICE_TIMEOUT_FLOOR_NANOS; }

  /**
   * What the engine says about itself right now, for the reason a mover gives when it goes out
   * of service (device and queue state, pending errors). Called only on that slow path.
   */
  default String health() { return "no state to report"; }

  /**
   * Stops the engine; for DSA, closing the queue's fd is where the kernel drains it. Afterwards
   * no completion record is written any more. Idempotent.
   */
  void close();
}
