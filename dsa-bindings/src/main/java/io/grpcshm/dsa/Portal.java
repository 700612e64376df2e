package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/** Where descriptors go: a DSA work queue (write() on its char device) or the software engine. */
interface Portal {
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

  void close();
}
