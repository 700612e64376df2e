package io.grpcshm.internal.movement;

import io.grpcshm.MoveEvent;
import io.grpcshm.MoveTracer;
import io.grpcshm.dsa.Batch;
import io.grpcshm.dsa.Completion;
import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverChoice;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverPolicy;
import io.grpcshm.dsa.ParallelCopy;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One thread's bulk writes (the engine behind {@link io.grpcshm.BulkWriter}): the latest
 * shared-memory buffer allocated on this thread, the moves this thread started and not yet
 * collected, and {@link io.grpcshm.DataMovement#scopedMode} overrides.
 *
 * <p>Which buffer took the bytes written since {@link #mark()}: grpc's framer allocates its
 * buffers on the thread that writes the message, and a buffer records itself here once, at
 * allocation ({@link #allocated}), not on every write. The bytes since {@code mark()} went into
 * the latest buffer if its write position moved since then (or it is new since then); if they
 * went to the heap or another transport, it did not move and {@link #tryMove} says no.
 *
 * <p>A move is attached to its target buffer as well as to this session, because grpc may send
 * the buffer before the marshaller returns (framer full) or after it, from another thread (flow
 * control): {@link #retired} runs before any hand-over or release of a buffer, and
 * {@link #finish()} before the marshaller returns, so the source may be freed after it.
 */
public final class BulkSession {
  private static final Logger LOG = Logger.getLogger(BulkSession.class.getName());
  private static final ThreadLocal<BulkSession> CURRENT =
      ThreadLocal.withInitial(BulkSession::new);
  /** A pipelined move is cut into a batch of chunks of at least this size. */
  static final long PIPELINE_CHUNK = 1 << 20;
  /** {@link #latest}: set by the owning thread, cleared by whichever thread retires it. */
  private static final VarHandle LATEST;

  static {
    try {
      LATEST = MethodHandles.lookup().findVarHandle(BulkSession.class, "latest",
          BulkTarget.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  @SuppressWarnings("unused") // through LATEST
  private volatile BulkTarget latest;
  private boolean armed;
  /** {@link #latest} and its write position when {@link #mark()} was called. */
  private BulkTarget markedTarget;
  private long markedWritten;
  /** Buffers that got moves from this thread since the last {@link #finish()}. */
  private final List<BulkTarget> touched = new ArrayList<>(4);
  private Mode[] modes = new Mode[4];
  private int modeDepth;

  private BulkSession() {}

  /**
   * A shared-memory buffer was allocated on this thread (by grpc's framer, which then writes
   * into it on this thread). Returns the session the buffer reports its retirement to.
   */
  public static BulkSession allocated(BulkTarget buffer) {
    BulkSession s = CURRENT.get();
    LATEST.setRelease(s, buffer);
    return s;
  }

  /**
   * {@code buffer} (allocated in this session) is being sent or released, on any thread: its
   * moves complete first (a mover must not write into an extent the peer owns or we reuse),
   * and it is no longer a target.
   */
  public void retired(BulkTarget buffer) {
    awaitMoves(buffer);
    LATEST.compareAndSet(this, buffer, null);
  }

  private BulkTarget latest() {
    return (BulkTarget) LATEST.getAcquire(this);
  }

  public static void mark() {
    BulkSession s = CURRENT.get();
    s.armed = true;
    BulkTarget t = s.latest();
    s.markedTarget = t;
    s.markedWritten = t == null ? 0 : t.written();
  }

  private void disarm() {
    armed = false;
    markedTarget = null;
  }

  public static boolean tryMove(ByteBuffer src) {
    BulkSession s = CURRENT.get();
    BulkTarget t = s.armed ? s.latest() : null;
    long writtenAtMark = t == s.markedTarget ? s.markedWritten : 0;
    s.disarm();
    if (t == null || t.written() <= writtenAtMark || !src.isDirect() || !t.writable()) {
      return false;
    }
    long n = src.remaining();
    long at = t.written();
    if (n > t.memory().byteSize() - at) {
      return false;
    }
    if (n > 0) {
      s.move(t, src, at);
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

  /** Runs this thread's moves in {@code mode} until the returned action is run. */
  public static Runnable pushMode(Mode mode) {
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
  static void awaitMoves(BulkTarget buffer) {
    List<Move> moves = buffer.moves();
    if (moves != null) {
      for (int i = 0; i < moves.size(); i++) {
        moves.get(i).complete(); // locked: waits for a completion another thread runs
      }
    }
  }

  /** Traces and counts a large heap payload that grpc's framer copied on the CPU. */
  public static void heapCopied(MoveContext ctx, long bytes, long nanos) {
    MovementSettings dm = ctx.settings();
    dm.counters().add(MoverKind.CPU, bytes, nanos, false);
    MoveTracer tracer = dm.tracer();
    if (tracer != null || LOG.isLoggable(Level.FINE)) {
      emit(tracer, new MoveEvent(ctx.method(), bytes, MoverKind.CPU, false, Mode.SYNC, "heap",
          Double.NaN, nanos / 1000.0, false, "heap source: engines need native addresses"));
    }
  }

  /** The policy's expected copy cost for a trace; NaN if it throws (a trace never fails a move). */
  private static double expectedCopy(MoverPolicy policy, MoverKind mover, long bytes) {
    try {
      return policy.expectedCopyMicros(mover, bytes);
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "MoverPolicy.expectedCopyMicros threw; ignored", e);
      return Double.NaN;
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
   * The mode a move runs in: a scoped mode on this thread, else the call's option, else the
   * configuration's, else SYNC: without one the marshaller collects the move before it returns,
   * so nothing overlaps it and the caller waits as in SYNC.
   */
  private Mode effectiveMode(MoveContext ctx, MovementSettings dm) {
    Mode mode = modeDepth > 0 ? modes[modeDepth - 1]
        : ctx.callMode() != null ? ctx.callMode() : dm.mode();
    return mode == null ? Mode.SYNC : mode;
  }

  private void move(BulkTarget t, ByteBuffer src, long at) {
    MoveContext ctx = t.context();
    MovementSettings dm = ctx.settings();
    long n = src.remaining();
    if (n < dm.threshold()) {
      MemorySegment.copy(MemorySegment.ofBuffer(src), 0, t.memory(), at, n);
      return;
    }
    Mode mode = effectiveMode(ctx, dm);
    long t0 = System.nanoTime();
    MovesInFlight.begin(); // ended by the Move's finish
    Move m;
    try {
      if (!dm.ready().getAsBoolean()) {
        new Move(t, src, at, Choice.warmUp(), t0).copyOnCpu(dm.notReadyReason().get());
        return;
      }
      MoverPolicy policy = dm.fixedMover() == null && dm.policy() != null
          ? dm.policy().get() : null;
      Choice choice;
      if (policy != null) {
        MoverChoice c = policy.choose(n, ctx.reuseWindow(), mode);
        // Asked before the copy, and only when a trace will carry it.
        double expected = dm.tracer() != null || LOG.isLoggable(Level.FINE)
            ? expectedCopy(policy, c.mover(), n) : Double.NaN;
        choice = new Choice(c, c.mover(), c.cacheInjection(), mode, c.basisLabel(),
            c.predictedMicros(), c.reason(), expected);
      } else {
        choice = new Choice(null, dm.fixedMover() == null ? MoverKind.CPU : dm.fixedMover(),
            false, mode, "fixed", Double.NaN, "", Double.NaN);
      }
      m = new Move(t, src, at, choice, t0);
    } catch (RuntimeException | Error e) {
      MovesInFlight.end();
      throw e;
    }
    Choice choice = m.choice;
    DataMover mover = dm.movers().get().get(choice.kind);
    if (mover == null || !mover.isAvailable()) {
      m.cpuCopy(choice.kind + " unavailable: " + (mover == null ? "no such mover"
          : mover.unavailableReason()));
      return;
    }
    if (!m.submit(mover)) {
      return; // copied on the CPU instead
    }
    // The CPU mover's copy is done on return: collect it now, as the profiler measured it.
    if (choice.mode == Mode.SYNC || choice.kind == MoverKind.CPU) {
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

  /**
   * The decision for one move: the policy's choice (null when none decided), mover, cache
   * injection, mode, and why.
   */
  record Choice(MoverChoice decided, MoverKind kind, boolean inject, Mode mode, String basis,
      double predicted, String note, double expectedCopy) {
    static Choice warmUp() {
      return new Choice(null, MoverKind.CPU, false, Mode.SYNC, "warm-up", Double.NaN, "",
          Double.NaN);
    }
  }

  /**
   * One payload's move into a transport buffer: in flight from {@link #submit} until
   * {@link #complete()} (or the connection's teardown, {@link #quiesce}). While in flight it is
   * registered with the buffer, whose connection does not unmap the memory before it ends.
   */
  public static final class Move {
    private final BulkTarget target;
    private final MoveContext context;
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

    /** The remaining bytes of {@code src} into {@code target} at {@code at}. */
    Move(BulkTarget target, ByteBuffer src, long at, Choice choice, long startNanos) {
      this.target = target;
      this.context = target.context();
      this.from = MemorySegment.ofBuffer(src);
      this.keepAlive = src;
      this.at = at;
      this.length = from.byteSize();
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
          c.await(context.settings().waitStrategy());
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

    private void copyOnCpu() {
      ParallelCopy.shared().copy(from, 0, target.memory(), at, length, false,
          context.settings().waitStrategy());
    }

    /** The chosen mover could not copy: the CPU copies the whole range instead. */
    private void cpuCopy(String why) {
      copyOnCpu();
      LOG.log(Level.FINE, "{0}: copied {1} bytes on the CPU instead", new Object[] {why, length});
      finish(why);
    }

    /** A planned CPU copy (not a fallback): traced with {@code why} as its note. */
    void copyOnCpu(String why) {
      copyOnCpu();
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
      MovementSettings dm = context.settings();
      dm.counters().add(choice.kind, length, nanos, fellBack);
      if (choice.decided != null && !fellBack && choice.mode == Mode.SYNC) {
        // A SYNC move's time is the copy's, as profiled; async ones include overlapped work.
        try {
          dm.policy().get().observe(choice.decided, length, context.reuseWindow(), choice.mode,
              nanos / 1000.0);
        } catch (RuntimeException e) {
          LOG.log(Level.WARNING, "MoverPolicy.observe threw; ignored", e);
        }
      }
      String fullNote = decisionNote.isEmpty() ? note
          : note.isEmpty() ? decisionNote : note + "; policy: " + decisionNote;
      MoveTracer tracer = dm.tracer();
      if (tracer != null || LOG.isLoggable(Level.FINE)) {
        emit(tracer, new MoveEvent(context.method(), length, choice.kind,
            choice.inject, choice.mode, choice.basis, choice.predicted, nanos / 1000.0,
            fellBack, fullNote, fellBack ? Double.NaN : choice.expectedCopy));
      }
    }
  }
}
