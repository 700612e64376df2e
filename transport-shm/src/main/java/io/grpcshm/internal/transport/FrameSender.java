package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.MailboxLayout;
import io.grpcshm.internal.nativeio.Futex;
import io.grpcshm.internal.ring.RingCorruptedException;
import io.grpcshm.internal.ring.RingProducer;
import io.netty.util.collection.IntObjectHashMap;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;

/**
 * Writes a connection's frames into its outbound ring. Never blocks: a frame that does not fit
 * (or arrives while older ones wait) is queued in order and the event loop sends it once the peer
 * frees space ({@link #drainFromLoop}). Any thread may send; {@link #lock} serialises them (the
 * ring has one producer).
 */
final class FrameSender {
  /**
   * Control frames (answers the peer provokes: PING_ACK, WINDOW_UPDATE, RELEASE, RST_STREAM,
   * GOAWAY) that may wait for ring space. A peer that keeps provoking them without reading its
   * ring is cut off here instead of growing our heap (HTTP/2 stacks do the same, e.g. Netty's
   * 10,000 outstanding control frames).
   */
  static final int MAX_QUEUED_CONTROL_FRAMES = 10_000;
  /**
   * Reply mailboxes one connection may have open at once (server side). Each holds a private
   * staging copy of its records; beyond this a named page is released at once and the answer
   * takes the ring, so a client with thousands of waiting calls costs at most 1 MiB here.
   */
  static final int MAX_OPEN_MAILBOXES = 256;
  /** Staging buffers kept for reuse, so a steady stream of calls allocates none. */
  private static final int MAX_SPARE_MAILBOXES = 32;
  private static final VarHandle WORD = ValueLayout.JAVA_INT.varHandle();
  /** CASes to FILLED a client's word may defeat before its answer takes the ring instead. */
  private static final int MAX_FILL_ATTEMPTS = 16;

  // Outcome bits of writing one frame (writeOrQueueLocked).
  private static final int WRITTEN = 1;
  private static final int COMMITTED = 2;
  private static final int QUEUED = 4;
  private static final int DROPPED = 8;

  private final ShmConnection connection;
  private final RingProducer tx;
  /** Wakes the peer's loop (a WAKE message), for {@link RingProducer#wakeConsumer}. */
  private final Runnable wakePeer;

  private final Object lock = new Object();
  @GuardedBy("lock") private final PendingRecords pending = new PendingRecords();
  /** Read without the lock on the fast path; written under it. */
  private volatile boolean hasPending;
  /** A frame was queued since the last {@link #trimQueueIfUnused}. */
  private volatile boolean queuedSinceTrim;
  /** Queued control frames (see {@link #MAX_QUEUED_CONTROL_FRAMES}). */
  @GuardedBy("lock") private int pendingControl;

  /**
   * Server with reply mailboxes on: the client's payload pool, where the pages it names live;
   * null otherwise. Written; of a page only the state word is read (PROTOCOL.md §7.5).
   */
  private final MemorySegment mailboxPool;
  /** Open reply mailboxes by stream (server side). */
  @GuardedBy("lock") private final IntObjectHashMap<OpenMailbox> mailboxes =
      new IntObjectHashMap<>();
  @GuardedBy("lock") private final ArrayDeque<OpenMailbox> spareMailboxes = new ArrayDeque<>();
  /** Whether {@link #mailboxes} may be non-empty: read without the lock on the fast path. */
  private volatile boolean anyMailbox;

  /**
   * A stream's open reply mailbox: the page it writes, and the records staged for it. Staged,
   * not written in place, so an answer that turns out not to fit can still go to the ring whole
   * and in order, from our own copy (nothing is read back from the peer's memory).
   */
  private static final class OpenMailbox {
    final byte[] staging = new byte[MailboxLayout.RECORDS_CAPACITY];
    final MemorySegment stagingView = MemorySegment.ofArray(staging);
    long offset;
    int used;
  }

  FrameSender(ShmConnection connection, RingProducer tx, Runnable wakePeer,
      MemorySegment mailboxPool) {
    this.connection = connection;
    this.tx = tx;
    this.wakePeer = wakePeer;
    this.mailboxPool = mailboxPool;
  }

  /** Whether this side serves reply mailboxes (a server that offered them). */
  boolean servesMailboxes() {
    return mailboxPool != null;
  }

  /** Whether page {@code page} of the client's pool can be a mailbox. */
  boolean isMailboxPage(int page) {
    return page >= 0 && (long) (page + 1) * MailboxLayout.SIZE <= mailboxPool.byteSize();
  }

  /**
   * Server: from now on stream {@code streamId}'s frames are staged for the mailbox at
   * {@code page} (checked by {@link #isMailboxPage}) until its last one. Over the limit the page
   * is released at once and the stream uses the ring.
   */
  void openMailbox(int streamId, int page) {
    long wake = 0;
    synchronized (lock) {
      if (!connection.isOpen()) {
        return;
      }
      long offset = (long) page * MailboxLayout.SIZE;
      if (mailboxes.size() >= MAX_OPEN_MAILBOXES) {
        wake = finishLocked(offset, MailboxLayout.STATE_RELEASED);
      } else {
        OpenMailbox mailbox = spareMailboxes.poll();
        if (mailbox == null) {
          mailbox = new OpenMailbox();
        }
        mailbox.offset = offset;
        mailbox.used = 0;
        mailboxes.put(streamId, mailbox);
        anyMailbox = true;
      }
    }
    wakeWaiter(wake);
  }

  /**
   * Server: stream {@code streamId} ended; a mailbox it never answered in is released (a
   * no-op when its last frame already went there).
   */
  void closeMailbox(int streamId) {
    if (!anyMailbox) {
      return;
    }
    long wake = 0;
    synchronized (lock) {
      OpenMailbox mailbox = mailboxes.remove(streamId);
      if (mailbox == null || !connection.isOpen()) {
        return;
      }
      wake = finishLocked(mailbox.offset, MailboxLayout.STATE_RELEASED);
      recycleLocked(mailbox);
    }
    wakeWaiter(wake);
  }

  /** Server: a page named by a stream that never opened (refused): released at once. */
  void releaseMailboxPage(int page) {
    long wake;
    synchronized (lock) {
      if (!connection.isOpen()) {
        return;
      }
      wake = finishLocked((long) page * MailboxLayout.SIZE, MailboxLayout.STATE_RELEASED);
    }
    wakeWaiter(wake);
  }

  /**
   * Stores the server's final state into the mailbox at {@code offset} (after its records, for
   * FILLED); returns the word's address if the caller sleeps on it (wake it, after the lock),
   * else 0.
   */
  @GuardedBy("lock")
  private long finishLocked(long offset, int state) {
    int previous = (int) WORD.getAndSet(mailboxPool, offset + MailboxLayout.STATE_OFFSET, state);
    return previous == MailboxLayout.STATE_SLEEPING
        ? mailboxPool.address() + offset + MailboxLayout.STATE_OFFSET : 0;
  }

  /**
   * Publishes a whole answer: the staged records and their length into the page, then FILLED by
   * a compare-and-set from WAITING or SLEEPING (ordering the records before it). Returns the
   * word's address to wake (0: the caller did not sleep), or -1 if the caller no longer waits on
   * the page (ABANDONED, or anything a client should not have written): then nothing is
   * published and the answer must take the ring. The word is read, never trusted beyond that.
   */
  @GuardedBy("lock")
  private long fillLocked(OpenMailbox mailbox) {
    long word = mailbox.offset + MailboxLayout.STATE_OFFSET;
    int state = (int) WORD.getVolatile(mailboxPool, word);
    if (state != MailboxLayout.STATE_WAITING && state != MailboxLayout.STATE_SLEEPING) {
      return -1;
    }
    MemorySegment.copy(mailbox.staging, 0, mailboxPool, ValueLayout.JAVA_BYTE,
        mailbox.offset + MailboxLayout.RECORDS_OFFSET, mailbox.used);
    mailboxPool.set(ValueLayout.JAVA_INT, mailbox.offset + MailboxLayout.LENGTH_OFFSET,
        mailbox.used);
    int attempts = 0;
    while (!WORD.compareAndSet(mailboxPool, word, state, MailboxLayout.STATE_FILLED)) {
      state = (int) WORD.getVolatile(mailboxPool, word);
      if (state != MailboxLayout.STATE_WAITING && state != MailboxLayout.STATE_SLEEPING
          || ++attempts > MAX_FILL_ATTEMPTS) {
        return -1; // a client flipping its word only delays its own answer (the ring)
      }
    }
    return state == MailboxLayout.STATE_SLEEPING ? mailboxPool.address() + word : 0;
  }

  /** Sends what was staged for a mailbox on the ring, in order; returns the outcome bits. */
  @GuardedBy("lock")
  private int flushStagedLocked(OpenMailbox mailbox, int streamId) {
    int outcome = 0;
    int at = 0;
    while (at < mailbox.used) {
      int staged = mailbox.stagingView.get(ValueLayout.JAVA_INT_UNALIGNED,
          at + FrameLayout.LENGTH_OFFSET);
      outcome |= writeOrQueueLocked(mailbox.staging[at + FrameLayout.TYPE_OFFSET] & 0xff,
          mailbox.staging[at + FrameLayout.FLAGS_OFFSET] & 0xff, 0, streamId, mailbox.staging,
          at + FrameLayout.HEADER_LENGTH, staged - FrameLayout.HEADER_LENGTH, null, 0, 0);
      at += staged;
    }
    return outcome;
  }

  @GuardedBy("lock")
  private void recycleLocked(OpenMailbox mailbox) {
    if (spareMailboxes.size() < MAX_SPARE_MAILBOXES) {
      spareMailboxes.add(mailbox);
    }
    if (mailboxes.isEmpty()) {
      anyMailbox = false;
    }
  }

  /** A futex wake outside the sender's lock (a syscall: other senders need not wait for it). */
  private static void wakeWaiter(long address) {
    if (address != 0) {
      Futex.wake(address);
    }
  }

  /** Frames a mailbox takes: a unary answer's. Anything else sends the answer to the ring. */
  private static boolean fitsMailbox(int type) {
    return switch (type) {
      case FrameLayout.TYPE_RESPONSE_HEADERS, FrameLayout.TYPE_DATA_INLINE,
          FrameLayout.TYPE_TRAILERS, FrameLayout.TYPE_RST_STREAM -> true;
      default -> false;
    };
  }

  /** Largest DATA_INLINE payload per record. */
  int maxInlinePayload() {
    return tx.maxRecordLength() - FrameLayout.HEADER_LENGTH;
  }

  /**
   * Sends one frame, or queues it. Returns false if the connection is closed (the frame is
   * dropped; the caller's stream is being failed anyway).
   */
  boolean send(int type, int flags, int streamId, byte[] body, int offset, int length) {
    return send(type, flags, streamId, body, offset, length, null, 0, 0);
  }

  /**
   * Sends one frame whose body is {@code body[offset, offset + length)} followed by {@code
   * tail[tailOffset, tailOffset + tailLength)} ({@code tail} may be null when its length is 0):
   * two buffers of grpc's framer (a message's 5-byte prefix and its bytes) become one record.
   */
  boolean send(int type, int flags, int streamId, byte[] body, int offset, int length,
      byte[] tail, int tailOffset, int tailLength) {
    return send(type, flags, 0, streamId, body, offset, length, tail, tailOffset, tailLength);
  }

  /** As above, with the header's reserved u16 (a REQUEST_HEADERS naming a reply mailbox). */
  boolean send(int type, int flags, int reserved, int streamId, byte[] body, int offset,
      int length, byte[] tail, int tailOffset, int tailLength) {
    int recordLength = FrameLayout.HEADER_LENGTH + length + tailLength;
    if (recordLength > tx.maxRecordLength()) {
      throw new IllegalArgumentException(
          FrameLayout.typeName(type) + " frame of " + recordLength + " bytes exceeds ring limit "
              + tx.maxRecordLength());
    }
    int outcome;
    long wake = 0;
    synchronized (lock) {
      if (!connection.isOpen()) {
        return false;
      }
      // WINDOW_UPDATE is flow control for the request: always on the ring, so that a request
      // still waiting for window never waits behind the answer it is for.
      OpenMailbox mailbox = anyMailbox && streamId != 0 && type != FrameLayout.TYPE_WINDOW_UPDATE
          ? mailboxes.get(streamId) : null;
      if (mailbox == null) {
        outcome = writeOrQueueLocked(type, flags, reserved, streamId, body, offset, length, tail,
            tailOffset, tailLength);
      } else if (fitsMailbox(type)
          && mailbox.used + recordLength <= MailboxLayout.RECORDS_CAPACITY) {
        encode(mailbox.stagingView, mailbox.used, type, flags, 0, streamId, body, offset, length,
            tail, tailOffset, tailLength);
        mailbox.used += recordLength;
        outcome = 0;
        if (type == FrameLayout.TYPE_TRAILERS || type == FrameLayout.TYPE_RST_STREAM) {
          mailboxes.remove(streamId);
          wake = fillLocked(mailbox);
          if (wake < 0) {
            // The caller stopped waiting on the page: the whole answer takes the ring.
            outcome = flushStagedLocked(mailbox, streamId);
            wake = finishLocked(mailbox.offset, MailboxLayout.STATE_ON_RING);
          }
          recycleLocked(mailbox);
        }
      } else {
        // Does not fit: what was staged goes to the ring first, in order, then this frame;
        // then the caller learns that the answer is on the ring.
        mailboxes.remove(streamId);
        outcome = flushStagedLocked(mailbox, streamId);
        outcome |= writeOrQueueLocked(type, flags, reserved, streamId, body, offset, length,
            tail, tailOffset, tailLength);
        wake = finishLocked(mailbox.offset, MailboxLayout.STATE_ON_RING);
        recycleLocked(mailbox);
      }
    }
    wakeWaiter(wake);
    try {
      if ((outcome & (WRITTEN | COMMITTED)) != 0) {
        tx.wakeConsumer(wakePeer); // every commit, ours or a queued frame's, may need a wake
      }
      if ((outcome & QUEUED) != 0) {
        connection.pokeLoop(); // let the loop retry the queue: space may have freed meanwhile
      }
    } catch (IllegalStateException e) {
      // Closed (and unmapped) concurrently: nobody is left to wake.
    }
    return (outcome & DROPPED) == 0;
  }

  /**
   * Writes one frame into the ring, or queues it behind older ones; returns outcome bits
   * ({@link #WRITTEN}, {@link #COMMITTED}: queued frames went out first, {@link #QUEUED},
   * {@link #DROPPED}: the connection is closing).
   */
  @GuardedBy("lock")
  private int writeOrQueueLocked(int type, int flags, int reserved, int streamId, byte[] body,
      int offset, int length, byte[] tail, int tailOffset, int tailLength) {
    int recordLength = FrameLayout.HEADER_LENGTH + length + tailLength;
    int outcome = 0;
    try {
      if (hasPending && drainLocked() > 0) {
        outcome |= COMMITTED;
      }
      if (!hasPending) {
        long at = tx.claim(recordLength);
        if (at >= 0) {
          encode(tx.data(), at, type, flags, reserved, streamId, body, offset, length, tail,
              tailOffset, tailLength);
          tx.commit();
          return outcome | WRITTEN;
        }
      }
      if (isControl(type) && ++pendingControl > MAX_QUEUED_CONTROL_FRAMES) {
        if (pendingControl == MAX_QUEUED_CONTROL_FRAMES + 1) {
          connection.closeLater(Status.UNAVAILABLE.withDescription("shared-memory peer "
              + "stopped reading its ring while provoking control frames ("
              + MAX_QUEUED_CONTROL_FRAMES + " queued): connection closed"));
        }
        return outcome | DROPPED;
      }
      int at = pending.reserve(recordLength);
      encode(pending.segment(), at, type, flags, reserved, streamId, body, offset, length, tail,
          tailOffset, tailLength);
      pending.append(recordLength);
      hasPending = true;
      queuedSinceTrim = true;
      tx.announceWaiting(true);
      return outcome | QUEUED;
    } catch (RingCorruptedException e) {
      connection.closeLater(
          Status.INTERNAL.withDescription("shared-memory ring corrupted: " + e.getMessage()));
      return outcome | DROPPED;
    }
  }

  /** Frames the peer provokes, as opposed to data and headers bounded by flow control. */
  private static boolean isControl(int type) {
    return switch (type) {
      case FrameLayout.TYPE_PING, FrameLayout.TYPE_PING_ACK, FrameLayout.TYPE_WINDOW_UPDATE,
          FrameLayout.TYPE_RELEASE, FrameLayout.TYPE_RST_STREAM, FrameLayout.TYPE_GOAWAY -> true;
      default -> false;
    };
  }

  private static void encode(MemorySegment dst, long at, int type, int flags, int reserved,
      int streamId, byte[] body, int offset, int length, byte[] tail, int tailOffset,
      int tailLength) {
    dst.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.LENGTH_OFFSET,
        FrameLayout.HEADER_LENGTH + length + tailLength);
    dst.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    dst.set(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET, (byte) flags);
    dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + FrameLayout.RESERVED_OFFSET, (short) reserved);
    dst.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET, streamId);
    if (length > 0) {
      MemorySegment.copy(body, offset, dst, ValueLayout.JAVA_BYTE,
          at + FrameLayout.HEADER_LENGTH, length);
    }
    if (tailLength > 0) {
      MemorySegment.copy(tail, tailOffset, dst, ValueLayout.JAVA_BYTE,
          at + FrameLayout.HEADER_LENGTH + length, tailLength);
    }
  }

  @GuardedBy("lock")
  private int drainLocked() {
    int sent = 0;
    while (!pending.isEmpty()) {
      int recordLength = pending.headLength();
      long at = tx.claim(recordLength);
      if (at < 0) {
        tx.announceWaiting(true);
        return sent;
      }
      boolean control = isControl(pending.headType());
      pending.moveHeadTo(tx.data(), at, recordLength);
      tx.commit();
      if (control) {
        pendingControl--;
      }
      sent++;
    }
    hasPending = false;
    tx.announceWaiting(false);
    return sent;
  }

  /** The loop's turn: sends what the queue holds and fits now; returns how many were sent. */
  int drainFromLoop() {
    if (!hasPending) {
      return 0;
    }
    int drained = 0;
    synchronized (lock) {
      if (connection.isOpen()) {
        drained = drainLocked();
      }
    }
    if (drained > 0) {
      tx.wakeConsumer(wakePeer);
    }
    return drained;
  }

  /** The peer consumed and asked to be told: wake it (loop thread). */
  void wakePeer() {
    tx.wakeConsumer(wakePeer);
  }

  /**
   * Before the loop parks: true if a queued frame fits now (do not sleep). Announces that we
   * wait for space, so the peer wakes us when it frees some.
   */
  boolean queuedFrameFits(boolean announce) {
    if (!hasPending) {
      return false;
    }
    if (announce) {
      tx.announceWaiting(true);
    }
    synchronized (lock) {
      return !pending.isEmpty() && tx.hasSpaceFor(pending.headLength());
    }
  }

  /**
   * Once a second (the loop's tick): gives back the queue's grown array if nothing was queued
   * since the last call, so a backlog's memory does not stay for the connection's life.
   */
  void trimQueueIfUnused() {
    if (!hasPending && !queuedSinceTrim) {
      synchronized (lock) {
        if (!queuedSinceTrim) {
          pending.trim();
        }
      }
    }
    queuedSinceTrim = false;
  }

  /** Position after the last frame written, for idle detection. */
  long position() {
    return tx.tailPosition();
  }

  /** Drops what is queued and every open mailbox (their memory goes): the connection is gone. */
  void clear() {
    synchronized (lock) {
      pending.clear();
      hasPending = false;
      pendingControl = 0;
      mailboxes.clear();
      spareMailboxes.clear();
      anyMailbox = false;
    }
  }
}
