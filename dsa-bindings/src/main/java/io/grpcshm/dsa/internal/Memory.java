package io.grpcshm.dsa.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

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

  /** Aligned 32-bit view for the atomic write touch (atomics need natural alignment). */
  private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();
  private static final VarHandle BYTE = ValueLayout.JAVA_BYTE.varHandle();
  /** Where read touches store their value, so the load is used and cannot be dropped. */
  @SuppressWarnings("unused")
  private static volatile byte sink;

  /**
   * Maps the page holding {@code addr} so a resubmitted descriptor finds it (DSA page-fault
   * resume). Plain accesses do not do this once compiled: C2 drops an unused load and a store of
   * the byte just loaded. A volatile load kept in a volatile sink, and an atomic add of zero (a
   * real locked write that changes nothing, even if another thread writes the page meanwhile)
   * cannot be elided.
   */
  public static void touch(long addr, boolean forWrite) {
    if (forWrite) {
      // The aligned word holding addr lies on the same page.
      INT.getAndAdd(ALL, addr & ~3L, 0);
    } else {
      sink = (byte) BYTE.getVolatile(ALL, addr);
    }
  }
}
