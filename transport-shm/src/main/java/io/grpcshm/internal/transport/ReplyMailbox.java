package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpcshm.internal.frame.MailboxLayout;
import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.nativeio.Futex;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Client side of one blocking unary call's reply mailbox (PROTOCOL.md §7.5): a page of our pool
 * the server writes the whole answer into, then wakes the caller, who waits on the page's state
 * word in {@link #await} and hands the records to the stream itself. The caller's thread was
 * going to block for the answer anyway; this way no event-loop thread reads the answer and hands
 * it over, which on these machines costs more than the rest of a small call.
 *
 * <p>Every way a call can end while its caller waits (deadline, cancel, connection loss, an
 * answer that came on the ring after all) calls {@link #abandon}, which ends the wait. The page
 * is reused only after the server has stored its final state ({@link ReplyMailboxes}), so a late
 * write can never land in another call's mailbox. Our mapping stays open while anyone waits:
 * the mailbox holds a lease on the connection's memory until {@link ReplyMailboxes#finish}.
 */
final class ReplyMailbox {
  /** How the wait ended. */
  enum Outcome {
    /** The answer is in the page. */
    FILLED,
    /** The server sent the answer on the ring, or released the page without one. */
    ELSEWHERE,
    /** The call ended here, or its answer arrives on the ring: stop waiting. */
    ABANDONED,
    /**
     * The caller stopped waiting on the page (its wait budget ran out, or it was interrupted, the
     * flag kept): the server sends the answer on the ring, and grpc's own wait takes over.
     */
    GAVE_UP
  }

  private static final VarHandle WORD = ValueLayout.JAVA_INT.varHandle();
  /** Polls of the word before sleeping: a fast server answers within them. */
  private static final int SPINS = 50;
  /**
   * Then yields before sleeping, whatever the number of waiters: a yield hands the core to a
   * runnable thread (the server's, another caller) and the answer is often there when the caller
   * runs again; then neither the caller's futex sleep nor the server's futex wake happens, each
   * several µs of CPU on a VM. At 8 calls in flight on 2 cores, 3 yields took the server's CPU per
   * 100 B call from 13.5-18 to 6.6-7.6 µs and calls/s up 1.3-1.8x, the caller's CPU unchanged;
   * 1 yield won less, 8 no more (docs/BENCHMARKS.md, "The blocked caller yields before it
   * sleeps"). With nothing else runnable a yield returns at once: a few system calls.
   */
  private static final int YIELDS = 3;
  /**
   * Callers of this process waiting on a page right now. A caller polls before it sleeps only
   * while fewer than {@link #SPIN_WHILE_FEWER_WAITERS} others wait: with more callers than
   * spare cores, the server needs the core a poll would take, and the answer never comes within
   * the polls (measured: at 8 calls in flight on 2 cores, polling cost 2-5 µs of client CPU per
   * call and won nothing; one call at a time, it takes a fifth off the latency).
   */
  private static final AtomicInteger WAITERS = new AtomicInteger();
  private static final int SPIN_WHILE_FEWER_WAITERS =
      Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
  /**
   * Longest wait on the page. A call that takes longer gains nothing from skipping one thread
   * hand-off, so its caller gives the page up (ABANDONED: the server then answers on the ring)
   * and parks in grpc's executor like any blocking call: no periodic wake-ups for long calls, and
   * an interrupt (which does not end a futex wait) is noticed within this bound.
   */
  static final long DEFAULT_WAIT_BUDGET_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
  private static volatile long waitBudgetNanos = DEFAULT_WAIT_BUDGET_NANOS;

  /** Tests: a different wait budget (a slow hand-written server must not race it). */
  static void setWaitBudgetNanos(long nanos) {
    waitBudgetNanos = nanos;
  }

  /** Our payload pool (the client-to-server pool), where the page lives. */
  private final MemorySegment pool;
  final long offset;
  /** Serialises {@link #abandon} with {@link #close}: nobody touches the page after close. */
  @GuardedBy("this") private boolean closed;
  /** Set by {@link #abandon}: the waiter leaves even if the server rewrites the word. */
  private volatile boolean abandoned;
  /** The waiter is in (or entering) a futex sleep. */
  private volatile boolean asleep;
  /** Give-up CASes the word may defeat in a row before the peer is deemed broken. */
  private static final int MAX_FAILED_GIVE_UPS = 1000;

  /** A freshly allocated page of {@code pool}: its state is set to WAITING here. */
  ReplyMailbox(MemorySegment pool, long offset) {
    this.pool = pool;
    this.offset = offset;
    WORD.setRelease(pool, offset + MailboxLayout.STATE_OFFSET, MailboxLayout.STATE_WAITING);
  }

  /** The page index REQUEST_HEADERS carries. */
  int pageIndex() {
    return (int) (offset / MailboxLayout.SIZE);
  }

  /**
   * Waits for the server's answer or for the call to leave the wait. Returns {@link
   * Outcome#FILLED} only when the page holds an answer (read it with {@link #copyRecords}).
   * Throws {@link ProtocolException} if the word holds a value no state has.
   */
  Outcome await() {
    int othersWaiting = WAITERS.getAndIncrement();
    try {
      return await(othersWaiting < SPIN_WHILE_FEWER_WAITERS ? SPINS : 0);
    } finally {
      WAITERS.getAndDecrement();
    }
  }

  private Outcome await(int spinLimit) {
    long word = offset + MailboxLayout.STATE_OFFSET;
    long deadline = System.nanoTime() + waitBudgetNanos; // once: a server cannot extend it
    int spins = 0;
    int yields = 0;
    int failedGiveUps = 0;
    while (true) {
      if (abandoned) {
        return Outcome.ABANDONED; // whatever the server keeps writing into the word
      }
      int state = (int) WORD.getAcquire(pool, word);
      switch (state) {
        case MailboxLayout.STATE_FILLED -> {
          return Outcome.FILLED;
        }
        case MailboxLayout.STATE_ON_RING, MailboxLayout.STATE_RELEASED -> {
          return Outcome.ELSEWHERE;
        }
        case MailboxLayout.STATE_ABANDONED -> {
          return Outcome.ABANDONED;
        }
        case MailboxLayout.STATE_WAITING, MailboxLayout.STATE_SLEEPING -> {
          long left = deadline - System.nanoTime();
          if (left <= 0 || Thread.currentThread().isInterrupted()) {
            if (WORD.compareAndSet(pool, word, state, MailboxLayout.STATE_ABANDONED)) {
              return Outcome.GAVE_UP;
            }
            if (++failedGiveUps > MAX_FAILED_GIVE_UPS) {
              // Only a peer that keeps rewriting our word gets here.
              throw new ProtocolException("reply mailbox state word keeps changing");
            }
          } else if (state == MailboxLayout.STATE_WAITING) {
            if (spins < spinLimit) {
              spins++;
              Thread.onSpinWait();
            } else if (yields < YIELDS) {
              yields++;
              Thread.yield();
            } else {
              // Announce the sleep: the server wakes us only if it sees SLEEPING.
              WORD.compareAndSet(pool, word, MailboxLayout.STATE_WAITING,
                  MailboxLayout.STATE_SLEEPING);
            }
          } else {
            asleep = true;
            Futex.await(pool.address() + word, MailboxLayout.STATE_SLEEPING, left);
            asleep = false;
          }
        }
        default -> throw new ProtocolException("reply mailbox state word holds " + state);
      }
    }
  }

  /**
   * Ends the wait, from any thread: the call ended, or its answer comes another way. A no-op
   * once the server stored its final state or the waiter is done with the page.
   */
  synchronized void abandon() {
    if (closed) {
      return;
    }
    abandoned = true; // seen by the waiter whatever the word says
    long word = offset + MailboxLayout.STATE_OFFSET;
    try {
      for (int attempt = 0; attempt < MAX_FAILED_GIVE_UPS; attempt++) {
        int state = (int) WORD.getVolatile(pool, word);
        if (state != MailboxLayout.STATE_WAITING && state != MailboxLayout.STATE_SLEEPING) {
          return;
        }
        if (WORD.compareAndSet(pool, word, state, MailboxLayout.STATE_ABANDONED)) {
          // Asleep with the word no longer SLEEPING only if the peer rewrote it: wake anyway.
          if (state == MailboxLayout.STATE_SLEEPING || asleep) {
            Futex.wake(pool.address() + word);
          }
          return;
        }
      }
      // A peer rewriting our word: the flag still ends the wait, once the waiter wakes.
      Futex.wake(pool.address() + word);
    } catch (IllegalStateException unmapped) {
      // The connection's memory is gone: nobody waits on it any more.
    }
  }

  /**
   * The waiter is done with the page: after this nothing here touches it. Returns whether the
   * server is done with it too (its final state is stored), so it can be reused at once.
   */
  synchronized boolean close() {
    closed = true;
    return serverDone();
  }

  /** Whether the server stored its final state (and will not write the page again). */
  boolean serverDone() {
    return MailboxLayout.isServerFinal(
        (int) WORD.getVolatile(pool, offset + MailboxLayout.STATE_OFFSET));
  }

  /**
   * Copies a FILLED page's records into {@code into} (at least
   * {@link MailboxLayout#RECORDS_CAPACITY} bytes) and returns their length: the length is read
   * once and checked before anything is copied.
   */
  int copyRecords(byte[] into) {
    int length = pool.get(ValueLayout.JAVA_INT, offset + MailboxLayout.LENGTH_OFFSET);
    if (length <= 0 || length > MailboxLayout.RECORDS_CAPACITY) {
      throw new ProtocolException("reply mailbox length " + length + " outside 1.."
          + MailboxLayout.RECORDS_CAPACITY);
    }
    MemorySegment.copy(pool, ValueLayout.JAVA_BYTE, offset + MailboxLayout.RECORDS_OFFSET, into,
        0, length);
    return length;
  }
}
