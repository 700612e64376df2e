package io.grpcshm.internal.loop;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpcshm.IdleStrategy;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One loop's relay of call hand-offs to grpc's default pool ({@link GrpcDefaultExecutor}): what
 * the loop hands to that pool goes into this queue, and a pool thread already running a
 * <em>relay task</em> takes the next one when it finishes, instead of going back to the pool's
 * queue to be woken again. At many calls in flight that saves most of the server's executor
 * wake-ups (an unpark by the loop, a park by the pool thread: a thread hand-off each, 11-14 µs
 * of CPU on the 2-vCPU hosts of docs/BENCHMARKS.md).
 *
 * <p>When every relay task is busy with a hand-off, a new one starts at once while there are
 * fewer than half the host's cores of them (one on a 2-core host): with cores to spare, calls
 * still run side by side.
 *
 * <p>A relay task runs the application's code, which may block. A queued hand-off therefore
 * never waits long behind a busy one: the loop checks the queue on every turn and starts
 * another relay task once no relay task has taken a hand-off for {@link #STALL_NANOS}, and
 * before it sleeps (nothing would check then). The pool grows as grpc's cached pool does when
 * handlers block; what a hand-off can wait behind a blocked handler is bounded by that period
 * and the loop's turn.
 *
 * <p>Only grpc's default pool is relayed: an executor the application chose gets each hand-off
 * itself, as it was given.
 *
 * <p>{@link #push} and {@link #check} run on the loop thread; relay tasks on pool threads.
 */
final class DefaultPoolRelay {
  private static final Logger log = Logger.getLogger(DefaultPoolRelay.class.getName());
  /**
   * How long queued hand-offs may see no relay task take one before the loop starts another:
   * several times a small unary call's server work (10-20 µs), far below a blocking handler's.
   */
  static final long STALL_NANOS = TimeUnit.MICROSECONDS.toNanos(50);

  /**
   * {@code -Dio.grpcshm.relay=false} hands each hand-off to the pool itself, as before the relay
   * (for comparison, e.g. SmallCallBenchmark's {@code --shm-b}).
   */
  static final boolean ENABLED = !"false".equals(System.getProperty("io.grpcshm.relay"));
  /**
   * A relay task that finds the queue empty yields up to this long for the next hand-off before
   * it ends (less if the loop's idle strategy yields less): at many calls in flight the next one
   * is a few microseconds away, and waking a pool thread again costs more than that.
   */
  static final long MAX_LINGER_NANOS = TimeUnit.MICROSECONDS.toNanos(20);
  private final String loopName;
  private final long lingerNanos;
  private final Object lock = new Object();
  @GuardedBy("lock") private Runnable[] tasks = new Runnable[16];
  @GuardedBy("lock") private EventLoop.HoldOwner[] owners = new EventLoop.HoldOwner[16];
  @GuardedBy("lock") private int[] calls = new int[16];
  @GuardedBy("lock") private int head;
  /** Queued hand-offs; written under the lock, read without it by the loop's check. */
  private volatile int size;
  /** Relay tasks submitted to the pool and not yet ended. */
  @GuardedBy("lock") private int relays;
  /**
   * Of those, the ones running a hand-off; the others (not running yet, or yielding for the next
   * hand-off) are free to take one.
   */
  @GuardedBy("lock") private int busyRelays;
  /**
   * Relay tasks a hand-off starts at once when every one is busy: on a host with cores to spare,
   * calls run side by side as they would on the pool; beyond this only the stall rule adds one.
   */
  private final int parallelRelays;
  /** When a relay task last took a hand-off (or one was started). */
  private volatile long lastTakeNanos;
  /** The pool a new relay task is submitted to: the executor of the latest hand-off. */
  private Executor via;
  private final Runnable relayTask = this::relay;

  DefaultPoolRelay(String loopName, IdleStrategy idle) {
    // Half the cores: the other half for the loops, the callers and the peer process.
    this(loopName, idle, Math.max(1, Runtime.getRuntime().availableProcessors() / 2));
  }

  DefaultPoolRelay(String loopName, IdleStrategy idle, int parallelRelays) {
    this.loopName = loopName;
    this.parallelRelays = parallelRelays;
    long loopIdle = idle.spinNanos() + idle.yieldNanos();
    this.lingerNanos = loopIdle < 0 ? MAX_LINGER_NANOS : Math.min(loopIdle, MAX_LINGER_NANOS);
  }

  /**
   * Queues {@code task}; starts a relay task unless one is free to take it or the busy ones
   * reached the parallel limit. Loop thread only.
   */
  void push(Executor pool, Runnable task, EventLoop.HoldOwner owner, int call) {
    boolean start;
    via = pool;
    synchronized (lock) {
      int n = size;
      if (n == tasks.length) {
        grow();
      }
      int tail = (head + n) & (tasks.length - 1);
      tasks[tail] = task;
      owners[tail] = owner;
      calls[tail] = call;
      size = n + 1;
      // A free relay task takes it; with every one busy, a new one while under the limit.
      start = relays == busyRelays && relays < parallelRelays;
      if (start) {
        relays++;
      }
    }
    if (start) {
      start();
    }
  }

  /**
   * On each loop turn: starts another relay task if hand-offs wait and none was taken for
   * {@link #STALL_NANOS}, or at once if the loop is about to sleep ({@code sleeping}).
   */
  void check(long nowNanos, boolean sleeping) {
    if (size == 0 || (!sleeping && nowNanos - lastTakeNanos < STALL_NANOS)) {
      return;
    }
    synchronized (lock) {
      if (size == 0) {
        return;
      }
      relays++;
    }
    start();
  }

  private void start() {
    lastTakeNanos = System.nanoTime();
    try {
      via.execute(relayTask);
    } catch (RuntimeException refusal) {
      refuseQueued(refusal);
    }
  }

  /** The pool refused a relay task: every queued call fails as a refused hand-off does. */
  private void refuseQueued(RuntimeException refusal) {
    EventLoop.HoldOwner[] refusedOwners;
    int[] refusedCalls;
    synchronized (lock) {
      relays--;
      if (relays > 0) {
        return; // a running relay task still drains the queue
      }
      int n = size;
      refusedOwners = new EventLoop.HoldOwner[n];
      refusedCalls = new int[n];
      for (int i = 0; i < n; i++) {
        int at = (head + i) & (tasks.length - 1);
        refusedOwners[i] = owners[at];
        refusedCalls[i] = calls[at];
        tasks[at] = null;
        owners[at] = null;
      }
      head = 0;
      size = 0;
    }
    for (int i = 0; i < refusedOwners.length; i++) {
      try {
        refusedOwners[i].heldExecutionRejected(refusedCalls[i], refusal);
      } catch (RuntimeException again) {
        log.log(Level.WARNING, loopName + ": failing a call its executor refused failed", again);
      }
    }
  }

  /** A relay task: runs queued hand-offs until none is left. */
  private void relay() {
    boolean busy = false;
    while (true) {
      Runnable task;
      if (size == 0 && lingerNanos > 0) {
        if (busy) {
          synchronized (lock) {
            busyRelays--;
          }
          busy = false;
        }
        long since = System.nanoTime();
        while (size == 0 && System.nanoTime() - since < lingerNanos) {
          Thread.yield();
        }
      }
      synchronized (lock) {
        if (size == 0) {
          relays--;
          if (busy) {
            busyRelays--;
          }
          return;
        }
        if (!busy) {
          busyRelays++;
          busy = true;
        }
        int at = head;
        task = tasks[at];
        tasks[at] = null;
        owners[at] = null;
        head = (at + 1) & (tasks.length - 1);
        size--;
      }
      lastTakeNanos = System.nanoTime();
      try {
        task.run();
      } catch (RuntimeException e) {
        // One failed hand-off must not stop the queue behind it (grpc's own tasks catch theirs).
        log.log(Level.SEVERE, loopName + ": a call hand-off failed", e);
      } catch (Error e) {
        synchronized (lock) {
          relays--; // the loop's stall check starts another for what is queued
          if (busy) {
            busyRelays--;
          }
        }
        throw e;
      }
    }
  }

  @GuardedBy("lock")
  private void grow() {
    int n = tasks.length;
    Runnable[] t = new Runnable[n * 2];
    EventLoop.HoldOwner[] o = new EventLoop.HoldOwner[n * 2];
    int[] c = new int[n * 2];
    for (int i = 0; i < n; i++) {
      int at = (head + i) & (n - 1);
      t[i] = tasks[at];
      o[i] = owners[at];
      c[i] = calls[at];
    }
    tasks = t;
    owners = o;
    calls = c;
    head = 0;
  }

  @Override
  public String toString() {
    return "DefaultPoolRelay{" + loopName + ", " + size + " queued}";
  }
}
