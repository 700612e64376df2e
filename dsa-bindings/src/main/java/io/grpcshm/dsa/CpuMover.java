package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/** Copies on the calling thread; the completion is done on return from submit. */
final class CpuMover extends CallerCopyMover {
  CpuMover() {
    super(MoverKind.CPU);
  }

  @Override
  public String description() {
    return "copy on the calling thread (MemorySegment.copy)";
  }

  @Override
  void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long length) {
    // Through the segments, not raw addresses: liveness is re-checked during the copy.
    MemorySegment.copy(src, srcOffset, dst, dstOffset, length);
  }

  @Override
  void doClose() {}
}
