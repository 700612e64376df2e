package io.grpcshm.internal.movement;

import io.grpcshm.DataMovement;
import io.grpcshm.MoveEvent;
import io.grpcshm.MoveTracer;
import io.grpcshm.dsa.Batch;
import io.grpcshm.dsa.Completion;
import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.policy.Decision;
import io.grpcshm.policy.PolicyEngine;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One thread's bulk writes (the engine behind {@link io.grpcshm.BulkWriter}): which transport
 * buffer received the bytes since {@link #mark()}, the moves this thread started and not yet
 * collected, and {@link DataMovement#scopedMode} overrides.
 *
 * <p>A move is attached to its target buffer as well as to this session, because grpc may send
 * the buffer before the marshaller returns (framer full) or after it, from another thread (flow
 * control): {@link #awaitMoves} runs before any hand-over or release of a buffer, and
 * {@link #finish()} before the marshaller returns, so the source may be freed after it.
 */
public final class BulkSession {
  private static final Logger LOG = Logger.getLogger(BulkSession.class.getName());
  private static final ThreadLocal<BulkSession> CURRENT =
      ThreadLocal.withInitial(BulkSession::new);
  /** A pipelined move is cut into a batch of chunks of at least this size. */
  static final long PIPELINE_CHUNK = 1 << 20;

  /**
   * Sessions armed by {@link #mark()} in the process: every transport write checks it first, so
   * writes outside a bulk session (nearly all) skip the thread-local lookup. A thread sees its own
   * increment, which is all {@link #wrote} needs.
   */
  private static final java.util.concurrent.atomic.AtomicInteger ARMED =
      new java.util.concurrent.atomic.AtomicInteger();

  private boolean armed;
  private BulkTarget target;
  /** Buffers that got moves from this thread since the last {@link #finish()}. */
  private final List<BulkTarget> touched = new ArrayList<>(4);
  private Mode[] modes = new Mode[4];
  private int modeDepth;

  private BulkSession() {}

  public static void mark() {
    BulkSession s = CURRENT.get();
    if (!s.armed) {
      s.armed = true;
      ARMED.incrementAndGet();
    }
    s.target = null;
  }

  private void disarm() {
    if (armed) {
      armed = false;
      ARMED.decrementAndGet();
    }
    target = null;
  }

  /** Transport buffers report every write; only the first after {@link #mark()} matters. */
  public static void wrote(BulkTarget buffer) {
    if (ARMED.get() == 0) {
      return;
    }
    BulkSession s = CURRENT.get();
    if (s.armed) {
      s.target = buffer;
    }
  }

  public static boolean tryMove(ByteBuffer src) {
    BulkSession s = CURRENT.get();
    BulkTarget t = s.armed ? s.target : null;
    s.disarm();
    if (t == null || !src.isDirect() || !t.writable()) {
      return false;
    }
    long n = src.remaining();
    MemorySegment dst = t.memory();
    long at = t.written();
    if (n > dst.byteSize() - at) {
      return false;
    }
    if (n > 0) {
      s.move(t, MemorySegment.ofBuffer(src), src, at, n);
      t.advance(n);
      src.position(src.limit());
    }
    return true;
  }

  public static void finish() {
    BulkSession s = CURRENT.get();
    s.disarm();
    for (int i = 0; i < s.touched.size(); i++) {
      awaitMoves(s.touched.get(i));
    }
    s.touched.clear();
  }

  public static DataMovement.ModeScope pushMode(Mode mode) {
    BulkSession s = CURRENT.get();
    if (s.modeDepth == s.modes.length) {
      s.modes = java.util.Arrays.copyOf(s.modes, s.modeDepth * 2);
    }
    int depth = s.modeDepth;
    s.modes[s.modeDepth++] = mode;
    return () -> {
      if (CURRENT.get() != s || s.modeDepth != depth + 1) {
        throw new IllegalStateException("mode scopes must be closed in order, on their thread");
      }
      s.modes[--s.modeDepth] = null;
    };
  }

  /**
   * Completes every move into {@code buffer} (falling back to a CPU copy where a mover failed).
   * Called before the buffer is sent or released, on whatever thread does that.
   */
  public static void awaitMoves(BulkTarget buffer) {
    List<Move> moves = buffer.moves();
    if (moves != null) {
      for (int i = 0; i < moves.size(); i++) {
        moves.get(i).complete(); // locked: waits for a completion another thread runs
      }
    }
  }

  /** Traces and counts a large heap payload that grpc's framer copied on the CPU. */
  public static void heapCopied(MoveContext ctx, long bytes, long nanos) {
    DataMovement dm = ctx.movement();
    dm.count(MoverKind.CPU, bytes, nanos, false);
    MoveTracer tracer = dm.tracer();
    if (tracer != null || LOG.isLoggable(Level.FINE)) {
      emit(tracer, new MoveEvent(ctx.method(), bytes, MoverKind.CPU, false, Mode.SYNC, "heap",
          Double.NaN, nanos / 1000.0, false, "heap source: engines need native addresses"));
    }
  }

  private static void emit(MoveTracer tracer, MoveEvent e) {
    if (LOG.isLoggable(Level.FINE)) {
      LOG.log(Level.FINE, "{0}: {1} bytes by {2}{3} {4} ({5}): predicted {6} us, observed {7}"
          + " us{8}", new Object[] {e.method(), e.bytes(), e.mover(),
              e.cacheInjection() ? "+inject" : "", e.mode(), e.basis(), e.predictedMicros(),
              e.observedMicros(), e.note().isEmpty() ? "" : "; " + e.note()});
    }
    if (tracer != null) {
      try {
        tracer.onMove(e);
      } catch (RuntimeException ex) {
        LOG.log(Level.WARNING, "MoveTracer threw; ignored", ex);
      }
    }
  }

  /**
   * The mode a move runs in: a {@link DataMovement#scopedMode} on this thread, else the call's
   * option, else the configuration's, else SYNC: without one the marshaller collects the move
   * before it returns, so nothing overlaps it and the caller waits as in SYNC.
   */
  private Mode effectiveMode(MoveContext ctx, DataMovement dm) {
    Mode mode = modeDepth > 0 ? modes[modeDepth - 1]
        : ctx.callMode() != null ? ctx.callMode() : dm.configuredMode();
    return mode == null ? Mode.SYNC : mode;
  }

  private void move(BulkTarget t, MemorySegment from, ByteBuffer keepAlive, long at, long n) {
    MoveContext ctx = t.context();
    DataMovement dm = ctx.movement();
    if (n < dm.threshold()) {
      MemorySegment.copy(from, 0, t.memory(), at, n);
      return;
    }
    Mode mode = effectiveMode(ctx, dm);
    long t0 = System.nanoTime();
    MovesInFlight.begin(); // ended by the Move's finish
    Move m;
    try {
      if (!dm.ready()) {
        new Move(t, from, keepAlive, at, n, Choice.warmUp(), t0).copyOnCpu(dm.notReadyReason());
        return;
      }
      PolicyEngine policy = dm.fixedMover() == null ? dm.policy() : null;
      Choice choice;
      if (policy != null) {
        Decision d = policy.decide(n, ctx.reuseWindow(), mode);
        choice = new Choice(d.mover(), d.cacheInjection(), mode,
            d.basis() == Decision.Basis.MODEL ? "model" : "fallback", d.predictedMicros(),
            d.reason());
      } else {
        choice = new Choice(dm.fixedMover() == null ? MoverKind.CPU : dm.fixedMover(), false,
            mode, "fixed", Double.NaN, "");
      }
      m = new Move(t, from, keepAlive, at, n, choice, t0);
    } catch (RuntimeException | Error e) {
      MovesInFlight.end();
      throw e;
    }
    if (m.choice.kind == MoverKind.CPU) {
      // A copy on this thread, as the profiler measured the CPU candidate (the PARALLEL mover
      // is the split copy); no completion handle needed.
      m.copyOnCaller(m.choice.note);
      return;
    }
    Choice choice = m.choice;
    DataMover mover = dm.movers().get(choice.kind);
    if (mover == null || !mover.isAvailable()) {
      m.cpuCopy(choice.kind + " unavailable: " + (mover == null ? "no such mover"
          : mover.unavailableReason()));
      return;
    }
    if (!m.submit(mover)) {
      return; // copied on the CPU instead
    }
    if (choice.mode == Mode.SYNC) {
      m.complete();
    } else if (!touched.contains(t)) {
      touched.add(t);
    }
  }

  private static Batch chunked(MemorySegment from, MemorySegment dst, long at, long n,
      boolean inject, int maxBatch) {
    long chunk = Math.max(PIPELINE_CHUNK, (n + maxBatch - 1) / maxBatch);
    int count = (int) ((n + chunk - 1) / chunk);
    Batch b = new Batch(count).cacheInjection(inject);
    for (long off = 0; off < n; off += chunk) {
      b.add(from, off, dst, at + off, Math.min(chunk, n - off));
    }
    return b;
  }

  /** The decision for one move: mover, cache injection, mode, and why. */
  record Choice(MoverKind kind, boolean inject, Mode mode, String basis, double predicted,
      String note) {
    static Choice warmUp() {
      return new Choice(MoverKind.CPU, false, Mode.SYNC, "warm-up", Double.NaN, "");
    }
  }

  /**
   * One payload's move into a transport buffer: in flight from {@link #submit} until
   * {@link #complete()} (or the connection's teardown, {@link #quiesce}). While in flight it is
   * registered with the buffer, whose connection does not unmap the memory before it ends.
   */
  public static final class Move {
    private final BulkTarget target;
    private final DataMovement movement;
    private final MemorySegment from;
    /** Keeps the source's memory reachable (a direct buffer's cleaner) until completion. */
    @SuppressWarnings("unused")
    private ByteBuffer keepAlive;
    private final long at;
    private final long length;
    private final Choice choice;
    private final long startNanos;
    /** Held while submitting and while completing: one thread polls the completion at a time. */
    private final ReentrantLock lock = new ReentrantLock();
    private Completion completion;
    private boolean done;

    Move(BulkTarget target, MemorySegment from, ByteBuffer keepAlive, long at, long length,
        Choice choice, long startNanos) {
      this.target = target;
      this.movement = target.context().movement();
      this.from = from;
      this.keepAlive = keepAlive;
      this.at = at;
      this.length = length;
      this.choice = choice;
      this.startNanos = startNanos;
    }

    /**
     * Registers with the target, then submits to {@code mover}; false if it copied on the CPU
     * instead (mover refused, or the target's connection is closing).
     */
    boolean submit(DataMover mover) {
      lock.lock();
      try {
        if (!target.addMove(this)) {
          cpuCopy("the shared-memory connection is closing");
          return false;
        }
        MemorySegment dst = target.memory();
        try {
          if (choice.mode == Mode.PIPELINED && length > PIPELINE_CHUNK
              && mover.maxBatchSize() > 1) {
            completion = mover.submit(chunked(from, dst, at, length, choice.inject,
                mover.maxBatchSize()));
          } else {
            completion = mover.submit(from, 0, dst, at, length, choice.inject);
          }
          return true;
        } catch (RuntimeException e) {
          cpuCopy(choice.kind + " refused the copy: " + e.getMessage());
          return false;
        }
      } finally {
        lock.unlock();
      }
    }

    /** Waits for the mover; on failure copies the whole range on the CPU (idempotent). */
    void complete() {
      lock.lock();
      try {
        if (done) {
          return;
        }
        String failure = null;
        Completion c = completion;
        try {
          c.await(movement.waitStrategy());
          if (!c.isSuccess()) {
            failure = choice.kind + " failed: " + c.statusName() + " after "
                + c.bytesCompleted() + " of " + length + " bytes";
          }
        } catch (RuntimeException e) {
          failure = choice.kind + " failed: " + e;
        } finally {
          releaseCompletion(c);
        }
        if (failure != null) {
          cpuCopy(failure);
        } else {
          finish("");
        }
      } finally {
        lock.unlock();
      }
    }

    /**
     * Teardown of the target's connection: waits until the mover no longer writes (without the
     * CPU fallback: the memory is going away). False if that did not happen by
     * {@code deadlineNanos} ({@link System#nanoTime()}).
     */
    public boolean quiesce(long deadlineNanos) {
      try {
        if (!lock.tryLock(Math.max(0, deadlineNanos - System.nanoTime()),
            java.util.concurrent.TimeUnit.NANOSECONDS)) {
          return false;
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
      try {
        if (done || completion == null) {
          return true;
        }
        while (!completion.isDone()) {
          if (System.nanoTime() - deadlineNanos > 0) {
            return false;
          }
          java.util.concurrent.locks.LockSupport.parkNanos(20_000);
        }
        releaseCompletion(completion);
        finish("the connection closed before the move was collected");
        return true;
      } finally {
        lock.unlock();
      }
    }

    private static void releaseCompletion(Completion c) {
      try {
        c.release();
      } catch (RuntimeException e) {
        LOG.log(Level.FINE, "could not release a completion handle", e);
      }
    }

    private void cpuCopy(String why) {
      ParallelCopy.copy(from, 0, target.memory(), at, length);
      LOG.log(Level.FINE, "{0}: copied {1} bytes on the CPU instead", new Object[] {why, length});
      finish(why);
    }

    /** A planned CPU copy (not a fallback): traced with {@code why} as its note. */
    void copyOnCpu(String why) {
      ParallelCopy.copy(from, 0, target.memory(), at, length);
      finish("", why);
    }

    /** The policy's CPU candidate: one copy on the calling thread. */
    void copyOnCaller(String why) {
      MemorySegment.copy(from, 0, target.memory(), at, length);
      finish("", why);
    }

    /** @param note empty, or why the CPU copied instead of the chosen mover */
    private void finish(String note) {
      finish(note, choice.note);
    }

    private void finish(String note, String decisionNote) {
      done = true;
      MovesInFlight.end();
      keepAlive = null;
      target.moveDone(this);
      long nanos = System.nanoTime() - startNanos;
      boolean fellBack = !note.isEmpty();
      movement.count(choice.kind, length, nanos, fellBack);
      String fullNote = decisionNote.isEmpty() ? note
          : note.isEmpty() ? decisionNote : note + "; policy: " + decisionNote;
      MoveTracer tracer = movement.tracer();
      if (tracer != null || LOG.isLoggable(Level.FINE)) {
        emit(tracer, new MoveEvent(target.context().method(), length, choice.kind,
            choice.inject, choice.mode, choice.basis, choice.predicted, nanos / 1000.0,
            fellBack, fullNote));
      }
    }
  }
}
