package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.Idxd;

/**
 * Handle on one submitted copy or batch. Handles are pooled per mover and reused: after the
 * copy is done, {@link #release()} it and do not touch it again. Poll it from one thread at a
 * time (polling may resubmit the rest of a copy after a page fault or a split).
 */
public final class Completion {
  /**
   * Not a device status: the engine never wrote a completion record - the wait passed the
   * mover's bound, or the mover went out of service with the copy in flight. The mover is then
   * out of service ({@link DataMover#unavailableReason()} says why); copy on the CPU instead.
   */
  public static final int STATUS_NO_COMPLETION = 0x100;

  /** Life cycle of a handle; transitions are checked. */
  public enum State {
    FREE, PENDING, SUCCEEDED, FAILED;

    boolean canMoveTo(State next) {
      return switch (this) {
        case FREE -> next == PENDING;
        case PENDING -> next == SUCCEEDED || next == FAILED || next == FREE; // FREE: abandoned
        case SUCCEEDED, FAILED -> next == FREE;
      };
    }
  }

  final AbstractMover owner;
  final int slot;
  private volatile State state = State.FREE;
  private long length;
  private int copies;
  private long bytesCompleted;
  private int status;
  private long submittedAt;
  private long predicted;

  Completion(AbstractMover owner, int slot) {
    this.owner = owner;
    this.slot = slot;
  }

  /** Polls once; true when the copy has finished (successfully or not). Never blocks. */
  public boolean isDone() {
    State s = state;
    if (s == State.PENDING) {
      owner.poll(this);
      s = state;
    }
    if (s == State.FREE) {
      throw new IllegalStateException("completion handle already released");
    }
    return s != State.PENDING;
  }

  /** Waits with the given strategy until done; does not throw on failure. */
  public Completion await(WaitStrategy wait) {
    wait.await(this);
    return this;
  }

  /** Waits, then throws {@link CopyFailedException} if the copy failed. */
  public void join(WaitStrategy wait) {
    await(wait);
    throwIfFailed();
  }

  public void throwIfFailed() {
    if (!isDone()) {
      throw new IllegalStateException("copy still in flight");
    }
    if (state == State.FAILED) {
      throw new CopyFailedException(owner.kind(), status, bytesCompleted, length);
    }
  }

  public State state() { return state; }

  public boolean isSuccess() { return state == State.SUCCEEDED; }

  /**
   * DSA status code: 0 while pending, 1 (SUCCESS), a device error code, or
   * {@link #STATUS_NO_COMPLETION}.
   */
  public int status() { return status; }

  public String statusName() { return statusName(status); }

  static String statusName(int status) {
    return status == STATUS_NO_COMPLETION ? "NO_COMPLETION" : Idxd.statusName(status);
  }

  /** Bytes requested (sum over a batch). */
  public long length() { return length; }

  /** Copies covered by this handle (1, or the batch size). */
  public int copies() { return copies; }

  /** Bytes known to be copied; equals {@link #length()} on success. */
  public long bytesCompleted() { return bytesCompleted; }

  /** {@link System#nanoTime()} at submission. */
  public long submittedAtNanos() { return submittedAt; }

  /** Latency the mover's calibration predicts for this copy (0 if uncalibrated). */
  public long predictedNanos() { return predicted; }

  /** The mover that owns this handle. */
  public DataMover mover() { return owner; }

  /** Returns the handle to its mover's pool. Only once the copy is done. */
  public void release() {
    State s = state;
    if (s == State.PENDING) {
      throw new IllegalStateException("cannot release a completion that is still in flight");
    }
    transition(State.FREE);
    owner.release(this);
  }

  // ---- engine side -------------------------------------------------------------------------

  void begin(long length, int copies, long predictedNanos) {
    transition(State.PENDING);
    this.length = length;
    this.copies = copies;
    this.bytesCompleted = 0;
    this.status = 0;
    this.predicted = predictedNanos;
    this.submittedAt = System.nanoTime();
  }

  void succeed() {
    this.bytesCompleted = length;
    this.status = Idxd.COMP_SUCCESS;
    transition(State.SUCCEEDED);
  }

  void fail(int status, long bytesCompleted) {
    this.status = status;
    this.bytesCompleted = bytesCompleted;
    transition(State.FAILED);
  }

  /** Back to FREE without running (submission refused). */
  void abandon() {
    transition(State.FREE);
  }

  private void transition(State next) {
    State s = state;
    if (!s.canMoveTo(next)) {
      throw new IllegalStateException("completion state " + s + " -> " + next);
    }
    state = next;
  }
}
