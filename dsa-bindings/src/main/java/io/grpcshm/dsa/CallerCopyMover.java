package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/**
 * A mover whose copies run on the submitting thread (perhaps with helpers it waits for): the
 * completion is done on return from submit, and nothing is ever pending.
 */
abstract class CallerCopyMover extends AbstractMover {
  CallerCopyMover(MoverKind kind) {
    super(kind, 64);
  }

  /** Copies the range before returning. */
  abstract void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length);

  @Override
  public long maxTransferSize() { return Long.MAX_VALUE; }

  @Override
  public int maxBatchSize() { return 1024; }

  @Override
  final int start(Completion c, MemorySegment src, long srcOffset, MemorySegment dst,
      long dstOffset, long length, boolean cacheInjection) {
    copy(src, srcOffset, dst, dstOffset, length);
    c.succeed();
    return ACCEPTED;
  }

  @Override
  final int startBatch(Completion c, Batch b) {
    for (int i = 0; i < b.size; i++) {
      copy(b.srcs[i], b.srcOffsets[i], b.dsts[i], b.dstOffsets[i], b.lengths[i]);
    }
    c.succeed();
    return ACCEPTED;
  }

  @Override
  final void poll(Completion c) {
    throw new IllegalStateException(kind() + " completions are never pending");
  }
}
