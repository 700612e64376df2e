package io.grpcshm.internal.transport;

import io.grpc.internal.WritableBuffer;
import io.grpcshm.dsa.ParallelCopy;
import io.grpcshm.internal.movement.BulkSession;
import io.grpcshm.internal.movement.BulkTarget;
import io.grpcshm.internal.movement.MoveContext;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * An outgoing payload written by grpc's framer straight into shared memory (the one copy on the
 * send side), or by a data mover ({@link BulkTarget}). Ownership passes to the peer when the
 * transport sends it; until then {@link #release()} returns the extent to our pool. Moves still
 * in flight are completed before either.
 */
final class ShmWritableBuffer implements WritableBuffer, BulkTarget {
  final ShmConnection connection;
  final int segmentId;
  final long offset;
  private final MemorySegment target;
  private final MoveContext moveContext;
  /** The allocating thread's bulk-write session (grpc's framer writes on that thread). */
  private final BulkSession session;
  private int written;
  private boolean handedOver;
  private boolean released;
  /** Moves in flight into this buffer; null when none. Guarded by this. */
  private List<BulkSession.Move> moves;

  ShmWritableBuffer(ShmConnection connection, int segmentId, long offset, MemorySegment target,
      MoveContext moveContext) {
    this.connection = connection;
    this.segmentId = segmentId;
    this.offset = offset;
    this.target = target;
    this.moveContext = moveContext;
    this.session = BulkSession.allocated(this);
  }

  @Override
  public void write(byte[] src, int srcIndex, int length) {
    if (length > writableBytes()) {
      throw new IndexOutOfBoundsException("write of " + length + " with " + writableBytes() + " free");
    }
    if (length >= moveContext.settings().threshold()) {
      // A large heap payload: no engine can read the Java heap, so the CPU copies it; traced
      // and counted like a mover's copy so that every large payload's path is observable.
      long t0 = System.nanoTime();
      ParallelCopy.copy(src, srcIndex, target, written, length);
      BulkSession.heapCopied(moveContext, length, System.nanoTime() - t0);
    } else {
      ParallelCopy.copy(src, srcIndex, target, written, length);
    }
    written += length;
  }

  @Override
  public void write(byte b) {
    if (writableBytes() < 1) {
      throw new IndexOutOfBoundsException("buffer full");
    }
    target.set(ValueLayout.JAVA_BYTE, written++, b);
  }

  @Override
  public int writableBytes() {
    return (int) (target.byteSize() - written);
  }

  @Override
  public int readableBytes() {
    return written;
  }

  /** Marks the extent as now owned by the peer (sent in a DATA_BLOCK frame). */
  void handOver() {
    session.retired(this);
    handedOver = true;
  }

  @Override
  public void release() {
    if (!handedOver && !released) {
      session.retired(this); // a mover must not write into an extent we reuse
      released = true;
      connection.freeTxExtent(segmentId, offset);
    }
  }

  // BulkTarget

  @Override
  public MemorySegment memory() {
    return target;
  }

  @Override
  public long written() {
    return written;
  }

  @Override
  public void advance(long n) {
    if (n < 0 || n > writableBytes()) {
      throw new IndexOutOfBoundsException("advance by " + n + " with " + writableBytes() + " free");
    }
    written += (int) n;
  }

  @Override
  public boolean writable() {
    return !handedOver && !released;
  }

  @Override
  public MoveContext context() {
    return moveContext;
  }

  @Override
  public synchronized boolean addMove(BulkSession.Move move) {
    if (!connection.moveStarted(move)) {
      return false;
    }
    if (moves == null) {
      moves = new ArrayList<>(2);
    }
    moves.add(move);
    return true;
  }

  @Override
  public void moveDone(BulkSession.Move move) {
    synchronized (this) {
      if (moves != null) {
        moves.remove(move);
      }
    }
    connection.moveEnded(move);
  }

  @Override
  public synchronized List<BulkSession.Move> moves() {
    return moves == null || moves.isEmpty() ? null : List.copyOf(moves);
  }
}
