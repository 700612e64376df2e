package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpcshm.internal.frame.MailboxLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * A client connection's reply mailboxes (PROTOCOL.md §7.5): pages of our pool lent to the server
 * one call at a time. A page whose call left the wait before the server stored its final state
 * (cancelled, timed out, answered on the ring) is quarantined until the server does, so a late
 * write never lands in a page given to another call. While {@link #MAX_QUARANTINED} or more are
 * quarantined (many slow calls at once, or a server that does not release its pages) new calls
 * use the ring; no page is ever dropped, each is freed once its server is done with it.
 *
 * <p>Lock order: this object is a leaf (the pool's monitor is taken inside it).
 */
final class ReplyMailboxes {
  /** Quarantined pages at which new calls stop getting a page (they use the ring). */
  static final int MAX_QUARANTINED = 64;
  /** Mailboxes opened in this process (tests see whether calls get one). */
  private static final LongAdder OPENED = new LongAdder();
  /** Pages lent (open or quarantined) in this process (tests see that each comes back). */
  private static final LongAdder LENT = new LongAdder();

  /**
   * Pages kept for the next calls once their server is done with them (-1: an empty slot), so
   * that a call takes its page without the pool's lock, which the callers would otherwise
   * contend for twice per call. Given back to the pool when the connection idles ({@link
   * #returnSpares}), so that trimming finds the pool empty.
   */
  private static final int SPARE_SLOTS = 16;

  private final AtomicLongArray spares = new AtomicLongArray(SPARE_SLOTS);
  private final ShmConnection connection;
  private final PayloadMemory memory;
  /** Our pool, where the pages are. */
  private final MemorySegment pool;
  @GuardedBy("this") private long[] quarantined = new long[MAX_QUARANTINED];
  @GuardedBy("this") private int quarantinedCount;
  /** {@link #quarantinedCount}, readable without the lock. */
  private volatile int quarantinedHint;

  ReplyMailboxes(ShmConnection connection, PayloadMemory memory, MemorySegment pool) {
    this.connection = connection;
    this.memory = memory;
    this.pool = pool;
    for (int i = 0; i < SPARE_SLOTS; i++) {
      spares.set(i, -1);
    }
  }

  /**
   * A page for one call's answer, holding a lease on the connection's memory until
   * {@link #finish}; null when none is free (the call uses the ring).
   */
  ReplyMailbox open() {
    if (quarantinedHint > 0 && !sweep()) {
      return null;
    }
    memory.leaseStarted(); // before the check: a close after it waits for this lease
    if (!connection.isOpen()) {
      connection.mailboxLeaseEnded();
      return null;
    }
    long offset = takeSpare();
    if (offset < 0) {
      offset = memory.allocateMailboxPage();
    }
    if (offset < 0 || offset / MailboxLayout.SIZE > MailboxLayout.MAX_PAGE_INDEX) {
      if (offset >= 0) {
        memory.freeMailboxPage(offset);
      }
      connection.mailboxLeaseEnded();
      return null;
    }
    try {
      ReplyMailbox mailbox = new ReplyMailbox(pool, offset);
      OPENED.increment();
      LENT.increment();
      return mailbox;
    } catch (IllegalStateException unmapped) {
      connection.mailboxLeaseEnded();
      return null;
    }
  }

  /** Mailboxes opened in this process so far. */
  static long opened() {
    return OPENED.sum();
  }

  /** Pages lent and not yet freed in this process (a closed connection's are not counted back). */
  static long lent() {
    return LENT.sum();
  }

  /**
   * The call is done with its mailbox (its waiter returned, or it never waited): the page is
   * freed if the server is done with it too, else quarantined; the lease ends.
   */
  void finish(ReplyMailbox mailbox) {
    try {
      if (mailbox.close()) {
        if (!keepSpare(mailbox.offset)) {
          memory.freeMailboxPage(mailbox.offset);
        }
        LENT.decrement();
      } else {
        quarantine(mailbox.offset);
      }
    } catch (IllegalStateException unmapped) {
      // The memory is gone with the connection; so is the pool's bookkeeping.
    } finally {
      connection.mailboxLeaseEnded();
    }
  }

  private long takeSpare() {
    for (int i = 0; i < SPARE_SLOTS; i++) {
      if (spares.getPlain(i) >= 0) {
        long offset = spares.getAndSet(i, -1);
        if (offset >= 0) {
          return offset;
        }
      }
    }
    return -1;
  }

  private boolean keepSpare(long offset) {
    for (int i = 0; i < SPARE_SLOTS; i++) {
      if (spares.getPlain(i) < 0 && spares.compareAndSet(i, -1, offset)) {
        return true;
      }
    }
    return false;
  }

  /** Gives the spare pages back to the pool (the connection idles: trimming needs it empty). */
  void returnSpares() {
    try {
      for (int i = 0; i < SPARE_SLOTS; i++) {
        long offset = spares.getAndSet(i, -1);
        if (offset >= 0) {
          memory.freeMailboxPage(offset);
        }
      }
    } catch (IllegalStateException unmapped) {
      // The connection's memory is gone, pool and all.
    }
  }

  private synchronized void quarantine(long offset) {
    if (quarantinedCount == quarantined.length) {
      // Bounded by the pages lent at once: more calls than this were waiting when they left.
      quarantined = java.util.Arrays.copyOf(quarantined, quarantinedCount * 2);
    }
    quarantined[quarantinedCount++] = offset;
    quarantinedHint = quarantinedCount;
  }

  /**
   * Frees quarantined pages the server has released since; true if fewer than
   * {@link #MAX_QUARANTINED} remain held. A page whose word holds no state at all (a server
   * scribbling on it) stays quarantined until the connection closes.
   */
  synchronized boolean sweep() {
    int kept = 0;
    try {
      for (int i = 0; i < quarantinedCount; i++) {
        long offset = quarantined[i];
        int state = pool.get(ValueLayout.JAVA_INT, offset + MailboxLayout.STATE_OFFSET);
        if (MailboxLayout.isServerFinal(state)) {
          memory.freeMailboxPage(offset);
          LENT.decrement();
        } else {
          quarantined[kept++] = offset;
        }
      }
    } catch (IllegalStateException unmapped) {
      kept = 0; // the connection's memory is gone, pool and all
    }
    quarantinedCount = kept;
    quarantinedHint = kept;
    return kept < MAX_QUARANTINED;
  }
}
