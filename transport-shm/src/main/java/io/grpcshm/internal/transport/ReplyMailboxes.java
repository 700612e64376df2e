package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpcshm.internal.frame.MailboxLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.LongAdder;

/**
 * A client connection's reply mailboxes (PROTOCOL.md §7.5): pages of our pool lent to the server
 * one call at a time. A page whose call left the wait before the server stored its final state
 * (cancelled, timed out, answered on the ring) is quarantined until the server does, so a late
 * write never lands in a page given to another call. A server that never releases its pages
 * stops getting new ones once {@link #MAX_QUARANTINED} are held: its calls use the ring.
 *
 * <p>Lock order: this object is a leaf (the pool's monitor is taken inside it).
 */
final class ReplyMailboxes {
  /** Pages held for a server that has not released them yet, at most. */
  static final int MAX_QUARANTINED = 64;
  /** Mailboxes opened in this process (tests see whether calls get one). */
  private static final LongAdder OPENED = new LongAdder();

  private final ShmConnection connection;
  private final PayloadMemory memory;
  /** Our pool, where the pages are. */
  private final MemorySegment pool;
  @GuardedBy("this") private final long[] quarantined = new long[MAX_QUARANTINED];
  @GuardedBy("this") private int quarantinedCount;
  /** {@link #quarantinedCount}, readable without the lock. */
  private volatile int quarantinedHint;

  ReplyMailboxes(ShmConnection connection, PayloadMemory memory, MemorySegment pool) {
    this.connection = connection;
    this.memory = memory;
    this.pool = pool;
  }

  /**
   * A page for one call's answer, holding a lease on the connection's memory until
   * {@link #finish}; null when none is free (the call uses the ring).
   */
  ReplyMailbox open() {
    if (quarantinedHint > 0 && !sweep()) {
      return null;
    }
    if (!connection.isOpen()) {
      return null;
    }
    memory.leaseStarted();
    long offset = memory.allocateMailboxPage();
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

  /**
   * The call is done with its mailbox (its waiter returned, or it never waited): the page is
   * freed if the server is done with it too, else quarantined; the lease ends.
   */
  void finish(ReplyMailbox mailbox) {
    try {
      if (mailbox.close()) {
        memory.freeMailboxPage(mailbox.offset);
      } else {
        quarantine(mailbox.offset);
      }
    } catch (IllegalStateException unmapped) {
      // The memory is gone with the connection; so is the pool's bookkeeping.
    } finally {
      connection.mailboxLeaseEnded();
    }
  }

  private synchronized void quarantine(long offset) {
    if (quarantinedCount < MAX_QUARANTINED) {
      quarantined[quarantinedCount++] = offset;
      quarantinedHint = quarantinedCount;
    }
    // Beyond the cap the page stays allocated until the connection closes: only a server that
    // ignores the protocol gets here, and it only costs its own connection pool pages.
  }

  /**
   * Frees quarantined pages the server has released since; true if fewer than
   * {@link #MAX_QUARANTINED} remain held.
   */
  synchronized boolean sweep() {
    int kept = 0;
    try {
      for (int i = 0; i < quarantinedCount; i++) {
        long offset = quarantined[i];
        int state = pool.get(ValueLayout.JAVA_INT, offset + MailboxLayout.STATE_OFFSET);
        if (MailboxLayout.isServerFinal(state)) {
          memory.freeMailboxPage(offset);
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
