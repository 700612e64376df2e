package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/**
 * Moves bytes between native memory segments: on the CPU, on a software copy engine, or on
 * Intel DSA. One completion API for all of them.
 *
 * <p>Rules: segments must be native, alive, accessible from the submitting thread and must stay
 * alive until the copy completes (an engine only sees addresses); source and destination must
 * not overlap. Every violation detectable at submission is an exception there. Movers are
 * thread-safe for submission; each {@link Completion} is polled by one thread at a time.
 */
public interface DataMover extends AutoCloseable {
  MoverKind kind();

  /** One line: what this mover is (engine, queue, capabilities). */
  String description();

  boolean isAvailable();

  /** Why {@link #isAvailable()} is false; empty when available. */
  String unavailableReason();

  /** The latency model used for hybrid waiting and break-even reports. */
  Calibration calibration();

  /** Largest copy one descriptor carries; larger copies are split transparently. */
  long maxTransferSize();

  /** Largest {@link Batch} this mover accepts. */
  int maxBatchSize();

  /** Copies in flight this mover can track at once (pooled completion handles). */
  int maxInFlight();

  /**
   * Starts a copy. Retries while the engine's queue is full (backpressure).
   *
   * @throws IllegalStateException if the mover is closed/unavailable or every handle is in use
   */
  Completion submit(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection);

  default Completion submit(CopyRequest r) {
    return submit(r.src, r.srcOffset, r.dst, r.dstOffset, r.length, r.cacheInjection);
  }

  /** Like {@link #submit(CopyRequest)} but returns null instead of waiting on a full queue. */
  Completion trySubmit(CopyRequest r);

  /** Submits a batch as one unit (a DSA BATCH descriptor); one completion for all copies. */
  Completion submit(Batch batch);

  /** Synchronous copy: submit, wait, release; throws {@link CopyFailedException} on failure. */
  default void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection, WaitStrategy wait) {
    Completion c = submit(src, srcOffset, dst, dstOffset, length, cacheInjection);
    try {
      c.join(wait);
    } finally {
      c.release();
    }
  }

  default void copy(CopyRequest r, WaitStrategy wait) {
    copy(r.src, r.srcOffset, r.dst, r.dstOffset, r.length, r.cacheInjection, wait);
  }

  /** A helper that drives this mover in one of the three {@link Mode}s. */
  default MoverSession session(Mode mode, WaitStrategy wait) {
    return new MoverSession(this, mode, wait, 32);
  }

  /** Releases engine resources (threads, file descriptors). Idempotent. */
  @Override
  void close();
}
