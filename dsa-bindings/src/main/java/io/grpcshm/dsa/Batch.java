package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/**
 * Up to {@link #capacity()} copies submitted together (one DSA BATCH descriptor) and completed
 * by one {@link Completion}. Reusable: {@link #clear()} it after the completion is released.
 * Elements are validated when added and again when submitted.
 */
public final class Batch {
  final MemorySegment[] srcs;
  final long[] srcOffsets;
  final MemorySegment[] dsts;
  final long[] dstOffsets;
  final long[] lengths;
  int size;
  boolean cacheInjection;

  public Batch(int capacity) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity must be >= 1: " + capacity);
    }
    srcs = new MemorySegment[capacity];
    dsts = new MemorySegment[capacity];
    srcOffsets = new long[capacity];
    dstOffsets = new long[capacity];
    lengths = new long[capacity];
  }

  public Batch add(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length) {
    if (size == srcs.length) {
      throw new IllegalStateException("batch is full (" + size + " copies)");
    }
    Checks.copyArgs(src, srcOffset, dst, dstOffset, length);
    srcs[size] = src;
    srcOffsets[size] = srcOffset;
    dsts[size] = dst;
    dstOffsets[size] = dstOffset;
    lengths[size] = length;
    size++;
    return this;
  }

  public Batch add(CopyRequest r) {
    return add(r.src, r.srcOffset, r.dst, r.dstOffset, r.length);
  }

  /** Cache-injection hint for every copy in the batch. */
  public Batch cacheInjection(boolean inject) {
    this.cacheInjection = inject;
    return this;
  }

  public boolean cacheInjection() { return cacheInjection; }

  public int size() { return size; }

  public int capacity() { return srcs.length; }

  public boolean isFull() { return size == srcs.length; }

  public long totalBytes() {
    long t = 0;
    for (int i = 0; i < size; i++) {
      t += lengths[i];
    }
    return t;
  }

  /** Forgets the elements (and drops the segment references). */
  public Batch clear() {
    for (int i = 0; i < size; i++) {
      srcs[i] = null;
      dsts[i] = null;
    }
    size = 0;
    return this;
  }

  void revalidate() {
    for (int i = 0; i < size; i++) {
      Checks.copyArgs(srcs[i], srcOffsets[i], dsts[i], dstOffsets[i], lengths[i]);
    }
  }
}
