package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.ring.RingCorruptedException;
import io.grpcshm.internal.ring.RingProducer;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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

  private final ShmConnection connection;
  private final RingProducer tx;
  /** Wakes the peer's loop (a WAKE message), for {@link RingProducer#wakeConsumer}. */
  private final Runnable wakePeer;

  private final Object lock = new Object();
  @GuardedBy("lock") private final ArrayDeque<byte[]> pending = new ArrayDeque<>();
  /** Read without the lock on the fast path; written under it. */
  private volatile boolean hasPending;
  /** Queued control frames (see {@link #MAX_QUEUED_CONTROL_FRAMES}). */
  @GuardedBy("lock") private int pendingControl;

  FrameSender(ShmConnection connection, RingProducer tx, Runnable wakePeer) {
    this.connection = connection;
    this.tx = tx;
    this.wakePeer = wakePeer;
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
    int recordLength = FrameLayout.HEADER_LENGTH + length + tailLength;
    if (recordLength > tx.maxRecordLength()) {
      throw new IllegalArgumentException(
          FrameLayout.typeName(type) + " frame of " + recordLength + " bytes exceeds ring limit "
              + tx.maxRecordLength());
    }
    boolean written = false;
    boolean committed = false;
    synchronized (lock) {
      if (!connection.isOpen()) {
        return false;
      }
      try {
        if (hasPending) {
          committed = drainLocked() > 0;
        }
        if (!hasPending) {
          long at = tx.claim(recordLength);
          if (at >= 0) {
            encode(tx.data(), at, type, flags, streamId, body, offset, length, tail, tailOffset,
                tailLength);
            tx.commit();
            written = true;
          }
        }
        if (!written) {
          if (isControl(type) && ++pendingControl > MAX_QUEUED_CONTROL_FRAMES) {
            if (pendingControl == MAX_QUEUED_CONTROL_FRAMES + 1) {
              connection.closeLater(Status.UNAVAILABLE.withDescription("shared-memory peer "
                  + "stopped reading its ring while provoking control frames ("
                  + MAX_QUEUED_CONTROL_FRAMES + " queued): connection closed"));
            }
            return false;
          }
          byte[] record = new byte[recordLength];
          encode(MemorySegment.ofArray(record), 0, type, flags, streamId, body, offset, length,
              tail, tailOffset, tailLength);
          pending.add(record);
          hasPending = true;
          tx.announceWaiting(true);
        }
      } catch (RingCorruptedException e) {
        connection.closeLater(
            Status.INTERNAL.withDescription("shared-memory ring corrupted: " + e.getMessage()));
        return false;
      }
    }
    try {
      if (written || committed) {
        tx.wakeConsumer(wakePeer); // every commit, ours or a queued frame's, may need a wake
      }
      if (!written) {
        connection.pokeLoop(); // let the loop retry the queue: space may have freed meanwhile
      }
    } catch (IllegalStateException e) {
      // Closed (and unmapped) concurrently: nobody is left to wake.
    }
    return true;
  }

  /** Frames the peer provokes, as opposed to data and headers bounded by flow control. */
  private static boolean isControl(int type) {
    return switch (type) {
      case FrameLayout.TYPE_PING, FrameLayout.TYPE_PING_ACK, FrameLayout.TYPE_WINDOW_UPDATE,
          FrameLayout.TYPE_RELEASE, FrameLayout.TYPE_RST_STREAM, FrameLayout.TYPE_GOAWAY -> true;
      default -> false;
    };
  }

  private static void encode(MemorySegment dst, long at, int type, int flags, int streamId,
      byte[] body, int offset, int length, byte[] tail, int tailOffset, int tailLength) {
    dst.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.LENGTH_OFFSET,
        FrameLayout.HEADER_LENGTH + length + tailLength);
    dst.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    dst.set(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET, (byte) flags);
    dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + FrameLayout.RESERVED_OFFSET, (short) 0);
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
    byte[] record;
    while ((record = pending.peek()) != null) {
      long at = tx.claim(record.length);
      if (at < 0) {
        tx.announceWaiting(true);
        return sent;
      }
      MemorySegment.copy(record, 0, tx.data(), ValueLayout.JAVA_BYTE, at, record.length);
      tx.commit();
      pending.poll();
      if (isControl(record[FrameLayout.TYPE_OFFSET])) {
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
      byte[] head = pending.peek();
      return head != null && tx.hasSpaceFor(head.length);
    }
  }

  /** Position after the last frame written, for idle detection. */
  long position() {
    return tx.tailPosition();
  }

  /** Drops what is queued: the connection is gone. */
  void clear() {
    synchronized (lock) {
      pending.clear();
      hasPending = false;
      pendingControl = 0;
    }
  }
}
