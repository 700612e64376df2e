package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/**
 * Drives one mover in one {@link Mode} for one thread (not thread-safe):
 *
 * <ul>
 *   <li>SYNC: {@link #copy} returns when the bytes are there.
 *   <li>ASYNC: {@link #copy} submits and returns; {@link #poll()} collects finished copies in
 *       submission order; {@link #drain()} waits for all.
 *   <li>PIPELINED: {@link #copy} adds to a batch; a full batch (or {@link #flush()}) is submitted
 *       as one unit; completions are checked only in {@link #poll()} / {@link #drain()}.
 * </ul>
 *
 * Failures surface as {@link CopyFailedException} from poll/drain (or copy, in SYNC mode).
 */
public final class MoverSession implements AutoCloseable {
  private final DataMover mover;
  private final Mode mode;
  private final WaitStrategy wait;
  private final Batch batch;
  private final Completion[] ring;
  private int head;
  private int count;
  private long completedCopies;
  private boolean closed;

  MoverSession(DataMover mover, Mode mode, WaitStrategy wait, int depth) {
    if (!mover.isAvailable()) {
      throw new IllegalStateException(mover.kind() + " mover is unavailable: "
          + mover.unavailableReason());
    }
    this.mover = mover;
    this.mode = mode;
    this.wait = wait;
    int inFlight = Math.max(1, Math.min(depth, mover.maxInFlight()));
    this.ring = new Completion[inFlight];
    this.batch = new Batch(Math.max(1, Math.min(depth, mover.maxBatchSize())));
  }

  public Mode mode() { return mode; }

  public DataMover mover() { return mover; }

  public void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection) {
    if (closed) {
      throw new IllegalStateException("session is closed");
    }
    switch (mode) {
      case SYNC -> {
        mover.copy(src, srcOffset, dst, dstOffset, length, cacheInjection, wait);
        completedCopies++;
      }
      case ASYNC -> {
        makeRoom();
        push(mover.submit(src, srcOffset, dst, dstOffset, length, cacheInjection));
      }
      case PIPELINED -> {
        if (batch.size() > 0 && batch.cacheInjection() != cacheInjection) {
          flush(); // one hint per batch
        }
        batch.cacheInjection(cacheInjection).add(src, srcOffset, dst, dstOffset, length);
        if (batch.isFull()) {
          flush();
        }
      }
    }
  }

  public void copy(CopyRequest r) {
    copy(r.src, r.srcOffset, r.dst, r.dstOffset, r.length, r.cacheInjection);
  }

  /** PIPELINED: submits the partial batch now. No-op in other modes. */
  public void flush() {
    if (batch.size() == 0) {
      return;
    }
    makeRoom();
    try {
      push(mover.submit(batch));
    } finally {
      batch.clear();
    }
  }

  /** Collects finished copies without blocking, in submission order; returns how many. */
  public int poll() {
    int n = 0;
    while (count > 0 && ring[head].isDone()) {
      n += retireHead();
    }
    return n;
  }

  /** Submits anything batched and waits for every copy in flight. */
  public void drain() {
    flush();
    while (count > 0) {
      ring[head].await(wait);
      retireHead();
    }
  }

  /** Copies finished so far (batch elements counted one by one). */
  public long completedCopies() { return completedCopies; }

  /** Handles in flight (a batch counts once). */
  public int inFlight() { return count; }

  /** Copies added but not yet submitted (PIPELINED). */
  public int batched() { return batch.size(); }

  private void makeRoom() {
    if (count == ring.length) {
      ring[head].await(wait);
      retireHead();
    }
  }

  private void push(Completion c) {
    ring[(head + count) % ring.length] = c;
    count++;
  }

  private int retireHead() {
    Completion c = ring[head];
    ring[head] = null;
    head = (head + 1) % ring.length;
    count--;
    int copies = c.copies();
    try {
      c.throwIfFailed();
    } finally {
      c.release();
    }
    completedCopies += copies;
    return copies;
  }

  /** Drains, then refuses further copies. */
  @Override
  public void close() {
    if (!closed) {
      try {
        drain();
      } finally {
        closed = true;
      }
    }
  }
}
