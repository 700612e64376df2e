package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/**
 * A reusable, mutable description of one copy. Keep one per thread and {@link #set} it per copy:
 * nothing is allocated on the hot path. Validation happens at submission.
 */
public final class CopyRequest {
  MemorySegment src;
  long srcOffset;
  MemorySegment dst;
  long dstOffset;
  long length;
  boolean cacheInjection;

  public CopyRequest() {}

  /** Copy all of {@code src} to the start of {@code dst}. */
  public static CopyRequest of(MemorySegment src, MemorySegment dst) {
    return new CopyRequest().set(src, 0, dst, 0, src.byteSize());
  }

  public CopyRequest set(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length) {
    this.src = src;
    this.srcOffset = srcOffset;
    this.dst = dst;
    this.dstOffset = dstOffset;
    this.length = length;
    return this;
  }

  /**
   * Hint: place the destination in the last-level cache because it is read soon (DSA's CC
   * flag). Ignored by movers that cannot honour it; the CPU copy caches anyway.
   */
  public CopyRequest cacheInjection(boolean inject) {
    this.cacheInjection = inject;
    return this;
  }

  public MemorySegment src() { return src; }

  public long srcOffset() { return srcOffset; }

  public MemorySegment dst() { return dst; }

  public long dstOffset() { return dstOffset; }

  public long length() { return length; }

  public boolean cacheInjection() { return cacheInjection; }
}
