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

  /** Remembers a move in flight into this buffer. */
  void addMove(BulkSession.Move move);

  /** The moves in flight (now owned by the caller, who completes them), or null. */
  List<BulkSession.Move> takeMoves();
}
