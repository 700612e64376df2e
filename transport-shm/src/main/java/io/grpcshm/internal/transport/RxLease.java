package io.grpcshm.internal.transport;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * A received payload extent that the receiver reads in place. Reference-counted across the
 * buffers the deframer slices from it; when the last one closes, the extent goes back to the
 * sender with a RELEASE frame.
 */
final class RxLease {
  private final ShmConnection connection;
  private final int segmentId;
  private final long offset;
  private final AtomicInteger refs = new AtomicInteger(1);

  RxLease(ShmConnection connection, int segmentId, long offset) {
    this.connection = connection;
    this.segmentId = segmentId;
    this.offset = offset;
  }

  RxLease retain() {
    int before = refs.getAndIncrement();
    if (before <= 0) {
      throw new IllegalStateException("lease already released");
    }
    return this;
  }

  void release() {
    int after = refs.decrementAndGet();
    if (after == 0) {
      connection.releaseLease(segmentId, offset);
    } else if (after < 0) {
      throw new IllegalStateException("lease released twice");
    }
  }
}
