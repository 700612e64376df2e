package io.grpcshm.dsa.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Raw-address memory operations for engines that, like DSA, only see virtual addresses.
 * Callers validate the ranges against live segments before an address reaches a descriptor.
 */
@SuppressWarnings("restricted") // address-space segment: callers validate ranges first
public final class Memory {
  private Memory() {}

  /** One segment spanning the address space: lets us copy by address without allocating. */
  public static final MemorySegment ALL = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);

  public static void copy(long src, long dst, long len) {
    MemorySegment.copy(ALL, src, ALL, dst, len);
  }

  /** Fills with a repeating little-endian 8-byte pattern, as DSA MEMFILL does. */
  public static void fill(long dst, long len, long pattern) {
    long i = 0;
    for (; i + 8 <= len; i += 8) {
      ALL.set(Descriptor.U64, dst + i, pattern);
    }
    for (int b = 0; i < len; i++, b++) {
      ALL.set(ValueLayout.JAVA_BYTE, dst + i, (byte) (pattern >>> (8 * b)));
    }
  }

  /** Offset of the first differing byte, or -1 if equal. */
  public static long mismatch(long a, long b, long len) {
    return MemorySegment.mismatch(ALL, a, a + len, ALL, b, b + len);
  }

  /** Touches one byte so the kernel maps the page (DSA page-fault resume). */
  public static void touch(long addr, boolean forWrite) {
    byte v = ALL.get(ValueLayout.JAVA_BYTE, addr);
    if (forWrite) {
      // Re-store the same value: faults the page in writable without changing data.
      ALL.set(ValueLayout.JAVA_BYTE, addr, v);
    }
  }
}
