package io.grpcshm.dsa.internal;

import static io.grpcshm.dsa.internal.Idxd.*;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * Flyweight over one 32-byte {@code struct dsa_completion_record}. The status byte is the
 * publication point: writers store every other field first and the status last with release
 * semantics; readers load the status with acquire semantics before reading anything else.
 */
public final class CompletionRecord {
  private static final VarHandle STATUS = ValueLayout.JAVA_BYTE.varHandle();

  private MemorySegment seg = MemorySegment.NULL;
  private long base;

  public CompletionRecord wrap(MemorySegment segment, long offset) {
    // Subtract rather than add: offset + CR_SIZE overflows for offsets near Long.MAX_VALUE (a
    // fuzzer found that the sum wrapped negative and passed the check).
    if (offset < 0 || offset > segment.byteSize() - CR_SIZE) {
      throw new IndexOutOfBoundsException("completion record at " + offset + " outside segment");
    }
    if (((segment.address() + offset) & (CR_ALIGN - 1)) != 0) {
      throw new IllegalArgumentException("completion record must be 32-byte aligned");
    }
    this.seg = segment;
    this.base = offset;
    return this;
  }

  public long address() { return seg.address() + base; }

  /** Zeroes the record before (re)submission; ordered before the submit by the queue/syscall. */
  public CompletionRecord clear() {
    for (int i = 0; i < CR_SIZE; i += 8) {
      seg.set(Descriptor.U64, base + i, 0L);
    }
    return this;
  }

  /** Raw status byte (including the write-fault bit), acquire load. 0 = not complete. */
  public int statusAcquire() { return ((byte) STATUS.getAcquire(seg, base + CR_STATUS)) & 0xFF; }

  public int result() { return seg.get(ValueLayout.JAVA_BYTE, base + CR_RESULT) & 0xFF; }

  public long bytesCompleted() {
    return Integer.toUnsignedLong(seg.get(Descriptor.U32, base + CR_BYTES_COMPLETED));
  }

  public long faultAddr() { return seg.get(Descriptor.U64, base + CR_FAULT_ADDR); }

  public int invalidFlags() { return seg.get(Descriptor.U32, base + CR_INVALID_FLAGS) & 0xFFFFFF; }

  /** Writer side: every field but the status, plain stores. */
  public CompletionRecord fields(int result, long bytesCompleted, long faultAddr, int invalidFlags) {
    seg.set(ValueLayout.JAVA_BYTE, base + CR_RESULT, (byte) result);
    seg.set(Descriptor.U32, base + CR_BYTES_COMPLETED, (int) bytesCompleted);
    seg.set(Descriptor.U64, base + CR_FAULT_ADDR, faultAddr);
    seg.set(Descriptor.U32, base + CR_INVALID_FLAGS, invalidFlags & 0xFFFFFF);
    return this;
  }

  /** Writer side: publishes the record. Must be the last store. */
  public void statusRelease(int status) { STATUS.setRelease(seg, base + CR_STATUS, (byte) status); }
}
