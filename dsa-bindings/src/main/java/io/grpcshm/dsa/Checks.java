package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/** Argument validation shared by every mover: a bad request fails here, never in an engine. */
final class Checks {
  private Checks() {}

  static void copyArgs(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length) {
    Objects.requireNonNull(src, "src segment is null");
    Objects.requireNonNull(dst, "dst segment is null");
    if (length < 0) {
      throw new IllegalArgumentException("negative length " + length);
    }
    segment("src", src);
    segment("dst", dst);
    if (dst.isReadOnly()) {
      throw new IllegalArgumentException("dst segment is read-only");
    }
    range("src", src, srcOffset, length);
    range("dst", dst, dstOffset, length);
    long s = src.address() + srcOffset;
    long d = dst.address() + dstOffset;
    if (length > 0 && s < d + length && d < s + length) {
      throw new IllegalArgumentException("src [0x" + Long.toHexString(s) + ", +" + length
          + ") and dst [0x" + Long.toHexString(d) + ", +" + length + ") overlap");
    }
  }

  private static void segment(String name, MemorySegment seg) {
    if (!seg.isNative()) {
      // Engines see only virtual addresses; a heap array can move under them.
      throw new IllegalArgumentException(name + " segment is a heap segment; movers need native"
          + " (off-heap) memory");
    }
    if (!seg.scope().isAlive()) {
      throw new IllegalStateException(name + " segment's arena is already closed");
    }
    if (!seg.isAccessibleBy(Thread.currentThread())) {
      throw new IllegalStateException(name + " segment is confined to another thread");
    }
  }

  private static void range(String name, MemorySegment seg, long offset, long length) {
    if (offset < 0 || offset > seg.byteSize() || length > seg.byteSize() - offset) {
      throw new IndexOutOfBoundsException(name + " range [" + offset + ", " + offset + " + "
          + length + ") does not fit in a segment of " + seg.byteSize() + " bytes");
    }
  }
}
