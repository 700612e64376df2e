package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.SoftwareCopyEngine;
import java.lang.foreign.MemorySegment;

/** Portal onto the in-process {@link SoftwareCopyEngine}. */
final class SoftwarePortal implements Portal {
  /**
   * Worker threads are not a device: on a loaded host one can be preempted for a long time, and
   * tests pause them on purpose. Only a copy stuck this long means a lost descriptor.
   */
  static final long TIMEOUT_FLOOR_NANOS = 10_000_000_000L;

  private final SoftwareCopyEngine engine;

  SoftwarePortal(SoftwareCopyEngine engine) {
    this.engine = engine;
  }

  SoftwareCopyEngine engine() { return engine; }

  @Override
  public int submit(MemorySegment desc) {
    return engine.submit(desc, 0) ? ACCEPTED : RETRY;
  }

  @Override
  public long maxTransferSize() { return SoftwareCopyEngine.MAX_TRANSFER_SIZE; }

  @Override
  public int maxBatchSize() { return SoftwareCopyEngine.MAX_BATCH_SIZE; }

  /** The hint travels in the descriptor; CPU stores allocate in cache anyway. */
  @Override
  public boolean cacheControl() { return true; }

  @Override
  public int maxInFlight() { return Integer.MAX_VALUE; }

  @Override
  public String describe() {
    return "software copy engine: " + engine.workers() + " worker thread(s), queue depth "
        + engine.queueCapacity() + ", chunks of " + (engine.chunkBytes() >> 10)
        + " KiB; spends CPU cores to overlap copies with the caller";
  }

  @Override
  public long completionTimeoutFloorNanos() { return TIMEOUT_FLOOR_NANOS; }

  @Override
  public String health() {
    return "software engine " + engine.state() + ", " + engine.executed()
        + " descriptors executed" + (engine.workersPaused() ? ", workers paused" : "");
  }

  @Override
  public void close() { engine.close(); }
}
