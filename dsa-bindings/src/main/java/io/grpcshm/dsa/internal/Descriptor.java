package io.grpcshm.dsa.internal;

import static io.grpcshm.dsa.internal.Idxd.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Flyweight over one 64-byte {@code struct dsa_hw_desc}. Re-{@link #wrap wrap} it instead of
 * allocating per descriptor; offsets come from {@link Idxd}.
 */
public final class Descriptor {
  static final ValueLayout.OfLong U64 =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfInt U32 =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfShort U16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private MemorySegment seg = MemorySegment.NULL;
  private long base;

  public Descriptor wrap(MemorySegment segment, long offset) {
    if (offset < 0 || offset > segment.byteSize() - DESC_SIZE) { // no overflow near MAX_VALUE
      throw new IndexOutOfBoundsException("descriptor at " + offset + " outside segment of "
          + segment.byteSize() + " bytes");
    }
    this.seg = segment;
    this.base = offset;
    return this;
  }

  public MemorySegment segment() { return seg; }

  public long offset() { return base; }

  /** Zeroes all 64 bytes: reserved fields must be zero or DSA answers NOZERO_RESERVE. */
  public Descriptor clear() {
    for (int i = 0; i < DESC_SIZE; i += 8) {
      seg.set(U64, base + i, 0L);
    }
    return this;
  }

  public int pasid() { return seg.get(U32, base + DESC_PASID_PRIV) & 0xFFFFF; }

  public boolean priv() { return (seg.get(U32, base + DESC_PASID_PRIV) >>> 31) != 0; }

  public Descriptor pasid(int pasid, boolean priv) {
    seg.set(U32, base + DESC_PASID_PRIV, (pasid & 0xFFFFF) | (priv ? 1 << 31 : 0));
    return this;
  }

  public int opcode() { return seg.get(U32, base + DESC_FLAGS) >>> 24; }

  public int flags() { return seg.get(U32, base + DESC_FLAGS) & 0xFFFFFF; }

  /** Writes the flags:24/opcode:8 word in one store. */
  public Descriptor opcodeAndFlags(int opcode, int flags) {
    seg.set(U32, base + DESC_FLAGS, (opcode << 24) | (flags & 0xFFFFFF));
    return this;
  }

  public long completionAddr() { return seg.get(U64, base + DESC_COMPLETION_ADDR); }

  public Descriptor completionAddr(long a) { seg.set(U64, base + DESC_COMPLETION_ADDR, a); return this; }

  public long srcAddr() { return seg.get(U64, base + DESC_SRC_ADDR); }

  public Descriptor srcAddr(long a) { seg.set(U64, base + DESC_SRC_ADDR, a); return this; }

  /** MEMFILL pattern shares the src_addr slot. */
  public Descriptor pattern(long p) { return srcAddr(p); }

  /** BATCH descriptor list shares the src_addr slot. */
  public Descriptor descListAddr(long a) { return srcAddr(a); }

  public long dstAddr() { return seg.get(U64, base + DESC_DST_ADDR); }

  public Descriptor dstAddr(long a) { seg.set(U64, base + DESC_DST_ADDR, a); return this; }

  /** COMPARE second source shares the dst_addr slot. */
  public Descriptor src2Addr(long a) { return dstAddr(a); }

  /** Unsigned 32-bit transfer size. */
  public long xferSize() { return Integer.toUnsignedLong(seg.get(U32, base + DESC_XFER_SIZE)); }

  public Descriptor xferSize(long size) {
    if (size < 0 || size > 0xFFFF_FFFFL) {
      throw new IllegalArgumentException("xfer_size is u32: " + size);
    }
    seg.set(U32, base + DESC_XFER_SIZE, (int) size);
    return this;
  }

  /** BATCH descriptor count shares the xfer_size slot. */
  public Descriptor descCount(int count) { return xferSize(count); }

  public int intHandle() { return Short.toUnsignedInt(seg.get(U16, base + DESC_INT_HANDLE)); }

  public int expectedResult() { return seg.get(ValueLayout.JAVA_BYTE, base + DESC_OP_SPECIFIC) & 0xFF; }

  public Descriptor expectedResult(int r) {
    seg.set(ValueLayout.JAVA_BYTE, base + DESC_OP_SPECIFIC, (byte) r);
    return this;
  }

  /** Copies this descriptor's 64 bytes to another location (software WQ slot, batch list). */
  public void copyTo(MemorySegment dst, long dstOffset) {
    MemorySegment.copy(seg, base, dst, dstOffset, DESC_SIZE);
  }
}
