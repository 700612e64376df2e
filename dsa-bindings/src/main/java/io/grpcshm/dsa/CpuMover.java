package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/** Copies on the calling thread; the completion is done on return from submit. */
final class CpuMover extends AbstractMover {
  CpuMover() {
    super(MoverKind.CPU, 64);
  }

  @Override
  public String description() {
    return "copy on the calling thread (MemorySegment.copy)";
  }

  @Override
  public long maxTransferSize() { return Long.MAX_VALUE; }

  @Override
  public int maxBatchSize() { return 1024; }

  @Override
  int start(Completion c, MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection) {
    // Through the segments, not raw addresses: liveness is re-checked during the copy.
    MemorySegment.copy(src, srcOffset, dst, dstOffset, length);
    c.succeed();
    return ACCEPTED;
  }

  @Override
  int startBatch(Completion c, Batch b) {
    for (int i = 0; i < b.size; i++) {
      MemorySegment.copy(b.srcs[i], b.srcOffsets[i], b.dsts[i], b.dstOffsets[i], b.lengths[i]);
    }
    c.succeed();
    return ACCEPTED;
  }

  @Override
  void poll(Completion c) {
    throw new IllegalStateException("CPU completions are never pending");
  }

  @Override
  void doClose() {}
}
