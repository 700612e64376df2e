package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Logger;

/**
 * Shared plumbing: validation, a fixed pool of reusable {@link Completion} handles (no
 * allocation per copy), queue-full retry, the calibration slot and the service state.
 */
abstract class AbstractMover implements DataMover {
  private static final Logger LOG = Logger.getLogger(AbstractMover.class.getName());

  /** Whether a mover takes work; transitions are checked and one-way. */
  enum Service {
    IN_SERVICE, OUT_OF_SERVICE, CLOSED;

    boolean canMoveTo(Service next) {
      return switch (this) {
        case IN_SERVICE -> next == OUT_OF_SERVICE || next == CLOSED;
        case OUT_OF_SERVICE -> next == CLOSED;
        case CLOSED -> false;
      };
    }
  }

  /** Result codes of {@link #start} / {@link #startBatch}. */
  static final int ACCEPTED = 0;
  static final int RETRY = 1;
  private static final long SUBMIT_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);

  private final MoverKind kind;
  private final Completion[] handles;
  private final int[] free;
  private int freeTop;
  private final ReentrantLock lock = new ReentrantLock();
  private volatile Service service = Service.IN_SERVICE;
  private volatile String outOfServiceReason = "";
  private volatile Calibration calibration = Calibration.UNCALIBRATED;

  AbstractMover(MoverKind kind, int slots) {
    this.kind = kind;
    this.handles = new Completion[slots];
    this.free = new int[slots];
    for (int i = 0; i < slots; i++) {
      handles[i] = new Completion(this, i);
      free[i] = slots - 1 - i;
    }
    freeTop = slots;
  }

  /** Starts a single copy on an acquired handle; returns ACCEPTED or RETRY. */
  abstract int start(Completion c, MemorySegment src, long srcOffset, MemorySegment dst,
      long dstOffset, long length, boolean cacheInjection);

  /** Starts a batch (size >= 2) on an acquired handle; returns ACCEPTED or RETRY. */
  abstract int startBatch(Completion c, Batch batch);

  /** Advances a PENDING completion; calls succeed/fail when done. Must not block. */
  abstract void poll(Completion c);

  /**
   * Whether a blocking submission with every pooled handle in use gets a fresh one instead of
   * failing: for a mover whose copies are done on return, so a handle is never held long.
   */
  boolean handlesOnDemand() { return false; }

  /** Engine-specific teardown, called once. */
  abstract void doClose();

  @Override
  public final MoverKind kind() { return kind; }

  @Override
  public boolean isAvailable() { return service == Service.IN_SERVICE; }

  @Override
  public String unavailableReason() {
    return switch (service) {
      case IN_SERVICE -> "";
      case OUT_OF_SERVICE -> "out of service: " + outOfServiceReason;
      case CLOSED -> outOfServiceReason.isEmpty() ? "closed"
          : "closed (was out of service: " + outOfServiceReason + ")";
    };
  }

  /**
   * Stops taking work, for good: the engine misbehaved (a completion that never came). Copies
   * already in flight are still polled to an end. Returns true for the caller that made the
   * transition (it then shuts the engine down), false if the mover was already out or closed.
   */
  final boolean takeOutOfService(String reason) {
    lock.lock();
    try {
      if (!service.canMoveTo(Service.OUT_OF_SERVICE)) {
        return false;
      }
      outOfServiceReason = reason;
      transition(Service.OUT_OF_SERVICE);
    } finally {
      lock.unlock();
    }
    LOG.warning(kind + " mover taken out of service: " + reason);
    return true;
  }

  /** Caller holds {@link #lock}. */
  private void transition(Service next) {
    if (!service.canMoveTo(next)) {
      throw new IllegalStateException(kind + " mover " + service + " -> " + next);
    }
    service = next;
  }

  @Override
  public Calibration calibration() { return calibration; }

  void calibration(Calibration c) { this.calibration = c; }

  @Override
  public int maxInFlight() { return handles.length; }

  @Override
  public final Completion submit(MemorySegment src, long srcOffset, MemorySegment dst,
      long dstOffset, long length, boolean cacheInjection) {
    return submitOne(src, srcOffset, dst, dstOffset, length, cacheInjection, true);
  }

  @Override
  public final Completion trySubmit(CopyRequest r) {
    return submitOne(r.src, r.srcOffset, r.dst, r.dstOffset, r.length, r.cacheInjection, false);
  }

  private Completion submitOne(MemorySegment src, long srcOffset, MemorySegment dst,
      long dstOffset, long length, boolean cacheInjection, boolean block) {
    ensureOpen();
    Checks.copyArgs(src, srcOffset, dst, dstOffset, length);
    Completion c = acquire(block);
    if (c == null) {
      return null;
    }
    c.begin(length, 1, calibration.predictNanos(length));
    long deadline = 0;
    for (;;) {
      int r;
      try {
        r = start(c, src, srcOffset, dst, dstOffset, length, cacheInjection);
      } catch (RuntimeException e) {
        abandon(c);
        throw e;
      }
      if (r == ACCEPTED) {
        return c;
      }
      if (!block) {
        abandon(c);
        return null;
      }
      deadline = backoff(c, deadline);
    }
  }

  @Override
  public final Completion submit(Batch batch) {
    ensureOpen();
    if (batch.size == 0) {
      throw new IllegalArgumentException("empty batch");
    }
    if (batch.size > maxBatchSize()) {
      throw new IllegalArgumentException("batch of " + batch.size + " exceeds " + kind
          + " max batch size " + maxBatchSize());
    }
    batch.revalidate();
    if (batch.size == 1) {
      return submit(batch.srcs[0], batch.srcOffsets[0], batch.dsts[0], batch.dstOffsets[0],
          batch.lengths[0], batch.cacheInjection);
    }
    Completion c = acquire(true);
    long total = batch.totalBytes();
    c.begin(total, batch.size, calibration.predictNanos(total));
    long deadline = 0;
    for (;;) {
      int r;
      try {
        r = startBatch(c, batch);
      } catch (RuntimeException e) {
        abandon(c);
        throw e;
      }
      if (r == ACCEPTED) {
        return c;
      }
      deadline = backoff(c, deadline);
    }
  }

  /** Queue full: yield and retry, but not forever (a wedged engine must surface). */
  private long backoff(Completion c, long deadline) {
    long now = System.nanoTime();
    if (deadline == 0) {
      return now + SUBMIT_TIMEOUT_NANOS;
    }
    if (now - deadline > 0) {
      abandon(c);
      throw new IllegalStateException(kind + " work queue stayed full for 10 s");
    }
    Thread.yield();
    return deadline;
  }

  private Completion acquire(boolean block) {
    lock.lock();
    try {
      if (freeTop == 0) {
        if (!block) {
          return null;
        }
        if (handlesOnDemand()) {
          return new Completion(this, -1);
        }
        throw new IllegalStateException("all " + handles.length + " " + kind
            + " completion handles are in use; release() completed ones");
      }
      return handles[free[--freeTop]];
    } finally {
      lock.unlock();
    }
  }

  private void abandon(Completion c) {
    c.abandon();
    release(c);
  }

  void release(Completion c) {
    if (c.slot < 0) {
      return; // made on demand, not pooled
    }
    lock.lock();
    try {
      free[freeTop++] = c.slot;
    } finally {
      lock.unlock();
    }
  }

  /** True if some handle is still PENDING (its descriptor may be in an engine). */
  final boolean anyPending() {
    for (Completion c : handles) {
      if (c.state() == Completion.State.PENDING) {
        return true;
      }
    }
    return false;
  }

  final void ensureOpen() {
    Service s = service;
    if (s != Service.IN_SERVICE) {
      throw new IllegalStateException(kind + " mover is " + (s == Service.CLOSED ? "closed"
          : "out of service: " + outOfServiceReason));
    }
  }

  @Override
  public final void close() {
    lock.lock();
    try {
      if (service == Service.CLOSED) {
        return;
      }
      transition(Service.CLOSED);
    } finally {
      lock.unlock();
    }
    doClose();
  }

  @Override
  public String toString() { return kind + ": " + description(); }
}
