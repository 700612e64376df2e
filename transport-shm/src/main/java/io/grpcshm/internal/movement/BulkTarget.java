package io.grpcshm.internal.movement;

import java.lang.foreign.MemorySegment;
import java.util.List;

/** A transport buffer in shared memory that a mover may write into at its current position. */
public interface BulkTarget {
  /** The buffer's memory; bytes {@code [written(), byteSize)} are free. */
  MemorySegment memory();

  long written();

  /** Accounts for {@code n} bytes written at {@link #written()} by a mover. */
  void advance(long n);

  /** False once the buffer was sent or released. */
  boolean writable();

  MoveContext context();

  /**
   * Remembers a move about to start into this buffer, and tells the buffer's connection, which
   * will not unmap the memory while the move is in flight. False if the connection already
   * began releasing its memory: the move must not start.
   */
  boolean addMove(BulkSession.Move move);

  /** The move finished (or was abandoned at teardown); forgets it. */
  void moveDone(BulkSession.Move move);

  /**
   * A snapshot of the moves not yet known to be complete, or null. Several threads may complete
   * the same moves at once (each waits for the one in progress).
   */
  List<BulkSession.Move> moves();
}
