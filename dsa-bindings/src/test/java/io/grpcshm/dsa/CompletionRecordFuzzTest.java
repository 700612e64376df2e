package io.grpcshm.dsa;

import static io.grpcshm.dsa.internal.Idxd.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.grpcshm.dsa.internal.CompletionRecord;
import io.grpcshm.dsa.internal.Descriptor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Completion records are written by a device (or the software engine) and parsed by
 * {@link DescriptorMover}: status, result, {@code bytes_completed}, {@code fault_addr}. Here a
 * fuzzer plays a device that copies honestly but writes arbitrary records: any status byte
 * (unknown codes, the write-fault bit), lying byte counts, fault addresses anywhere, failed or
 * unexecuted batch entries, queue-full and batch-unsupported answers. Properties: the mover
 * never builds a descriptor outside the buffers it was given (the device checks every one),
 * never touches a fault address outside them (it would crash), always finishes, reports failure
 * only as a FAILED completion, and a reported success of a consistent device means the bytes
 * arrived.
 */
class CompletionRecordFuzzTest {
  private static final int GUARD = 64;

  /** A device that does what descriptors say and records whatever the fuzzer wants. */
  static final class LyingDevice implements Portal {
    final FuzzedDataProvider data;
    final long maxTransfer;
    final int maxBatch;
    final long srcLo;
    final long srcHi;
    final long dstLo;
    final long dstHi;
    int retries;
    boolean lied;
    String violation;
    final StringBuilder trace = new StringBuilder();

    LyingDevice(FuzzedDataProvider data, MemorySegment src, MemorySegment dst) {
      this.data = data;
      this.maxTransfer = data.consumeLong(1, 4096);
      this.maxBatch = data.consumeBoolean() ? 0 : data.consumeInt(2, 8);
      this.srcLo = src.address() + GUARD;
      this.srcHi = src.address() + src.byteSize() - GUARD;
      this.dstLo = dst.address() + GUARD;
      this.dstHi = dst.address() + dst.byteSize() - GUARD;
    }

    @Override
    public int submit(MemorySegment desc) {
      Descriptor d = new Descriptor().wrap(desc, 0);
      if (retries < 3 && data.consumeInt(0, 7) == 0) {
        retries++;
        return RETRY;
      }
      if (d.opcode() == OP_BATCH) {
        if (data.consumeInt(0, 7) == 0) {
          return BATCH_UNSUPPORTED;
        }
        long count = d.xferSize();
        MemorySegment list = MemorySegment.ofAddress(d.srcAddr()).reinterpret(count * DESC_SIZE);
        boolean allOk = true;
        for (int k = 0; k < count; k++) {
          allOk &= execute(new Descriptor().wrap(list, (long) k * DESC_SIZE), true);
        }
        int status = switch (data.consumeInt(0, 3)) {
          case 0 -> allOk ? COMP_SUCCESS : COMP_BATCH_FAIL;
          case 1 -> COMP_BATCH_FAIL;
          case 2 -> COMP_SUCCESS;
          default -> data.consumeInt(1, 255);
        };
        if ((status & STATUS_MASK) == COMP_SUCCESS && !allOk) {
          lied = true;
        }
        trace.append(String.format("[batch of %d: status 0x%x] ", count, status));
        record(d.completionAddr(), status, 0, 0);
        return ACCEPTED;
      }
      if (d.opcode() != OP_MEMMOVE) {
        violation = "unexpected opcode " + d.opcode();
        return -22;
      }
      execute(d, false);
      return ACCEPTED;
    }

    /** Runs one MEMMOVE descriptor; true if it copied everything it was asked to. */
    private boolean execute(Descriptor d, boolean inBatch) {
      long src = d.srcAddr();
      long dst = d.dstAddr();
      long len = d.xferSize();
      if (len > maxTransfer || src < srcLo || src + len > srcHi || dst < dstLo
          || dst + len > dstHi) {
        violation = "descriptor outside the buffers: src " + (src - srcLo) + " dst "
            + (dst - dstLo) + " len " + len;
        record(d.completionAddr(), COMP_XFER_ERANGE, 0, 0);
        return false;
      }
      int kind = data.consumeInt(0, 4);
      long copied;
      int status;
      long bc = 0;
      long fault = 0;
      switch (kind) {
        case 0, 1 -> {
          copied = len;
          status = COMP_SUCCESS;
        }
        case 2 -> {
          bc = data.consumeLong(0, len + 16);
          copied = Math.min(bc, len);
          status = COMP_PAGE_FAULT_NOBOF | (data.consumeBoolean() ? STATUS_WRITE : 0);
          long base = (status & STATUS_WRITE) != 0 ? dst : src;
          fault = switch (data.consumeInt(0, 3)) {
            case 0 -> base + copied;
            case 1 -> base + data.consumeLong(0, Math.max(0, len - 1));
            case 2 -> data.consumeLong();
            default -> base - data.consumeLong(1, 1 << 20);
          };
          if (bc > len) {
            lied = true;
          }
        }
        case 3 -> {
          copied = 0;
          status = COMP_NONE; // a batch entry that never ran (or a device that says nothing)
        }
        default -> {
          copied = data.consumeLong(0, len);
          status = data.consumeInt(inBatch ? 0 : 1, 255);
          bc = data.consumeLong(0, 1L << 32);
          fault = data.consumeLong();
          // Success without the bytes, or a page fault / record fault (CRA_XLAT, resumed from
          // bytes_completed like a page fault) claiming more than was copied, are lies software
          // cannot detect (see SECURITY.md).
          int code = status & STATUS_MASK;
          if ((code == COMP_SUCCESS && copied < len)
              || ((code == COMP_PAGE_FAULT_NOBOF || code == COMP_CRA_XLAT) && bc > copied)) {
            lied = true;
          }
        }
      }
      if (copied > 0) {
        MemorySegment.copy(MemorySegment.ofAddress(src).reinterpret(copied), 0,
            MemorySegment.ofAddress(dst).reinterpret(copied), 0, copied);
      }
      if (status == COMP_NONE && (!inBatch || data.consumeBoolean())) {
        // A single descriptor whose record stays empty would hang any consumer; a real device
        // always writes it. Only batch entries may stay unexecuted.
        status = COMP_SUCCESS;
        MemorySegment.copy(MemorySegment.ofAddress(src).reinterpret(len), 0,
            MemorySegment.ofAddress(dst).reinterpret(len), 0, len);
      }
      trace.append(String.format("[%s src+%d dst+%d len %d: copied %d status 0x%x bc %d fault %+d] ",
          inBatch ? "entry" : "single", src - srcLo, dst - dstLo, len, copied, status, bc,
          fault - dst));
      record(d.completionAddr(), status, bc, fault);
      return (status & STATUS_MASK) == COMP_SUCCESS
          || ((status & STATUS_MASK) == COMP_PAGE_FAULT_NOBOF && copied >= len);
    }

    private void record(long address, int status, long bc, long fault) {
      MemorySegment seg = MemorySegment.ofAddress(address).reinterpret(CR_SIZE);
      CompletionRecord r = new CompletionRecord().wrap(seg, 0);
      r.fields(data.consumeInt(0, 255), bc, fault, data.consumeInt());
      r.statusRelease(status);
    }

    @Override
    public long maxTransferSize() {
      return maxTransfer;
    }

    @Override
    public int maxBatchSize() {
      return maxBatch;
    }

    @Override
    public boolean cacheControl() {
      return false;
    }

    @Override
    public int maxInFlight() {
      return 1;
    }

    @Override
    public String describe() {
      return "lying device";
    }

    @Override
    public void close() {}
  }

  @FuzzTest(maxDuration = "20s")
  void moverSurvivesArbitraryCompletionRecords(FuzzedDataProvider data) {
    int length = data.consumeInt(0, 8192);
    int entries = data.consumeInt(1, 4);
    boolean batch = entries > 1;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment src = arena.allocate(length + 2L * GUARD, 64);
      MemorySegment dst = arena.allocate(length + 2L * GUARD, 64);
      for (long i = 0; i < src.byteSize(); i++) {
        src.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + 7));
      }
      dst.fill((byte) 0x5a);
      LyingDevice device = new LyingDevice(data, src, dst);
      DescriptorMover mover = new DescriptorMover(MoverKind.DSA, device, 1);
      try {
        Completion c;
        try {
          if (batch) {
            Batch b = new Batch(entries);
            int part = length / entries;
            for (int k = 0; k < entries; k++) {
              int len = k == entries - 1 ? length - part * k : part;
              b.add(src, GUARD + (long) part * k, dst, GUARD + (long) part * k, len);
            }
            c = mover.submit(b);
          } else {
            c = mover.submit(src, GUARD, dst, GUARD, length, false);
          }
        } catch (IllegalStateException | IllegalArgumentException e) {
          // a device that refuses submissions is reported, not ignored
          assertTrue(device.violation != null || e.getMessage() != null, e.toString());
          return;
        }
        int polls = 0;
        while (!c.isDone()) {
          if (++polls > 100_000) {
            fail("copy never finished: " + c.state() + " " + c.statusName());
          }
        }
        if (device.violation != null) {
          fail(device.violation);
        }
        if (c.isSuccess()) {
          if (!device.lied) {
            assertEquals(-1L, src.asSlice(GUARD, length).mismatch(dst.asSlice(GUARD, length)),
                "success reported but bytes missing; length " + length + ", max transfer "
                + device.maxTransfer + ": " + device.trace);
          }
        } else {
          assertEquals(Completion.State.FAILED, c.state());
          assertTrue(c.bytesCompleted() >= 0 && c.bytesCompleted() <= length,
              "bytesCompleted " + c.bytesCompleted() + " of " + length);
          try {
            c.throwIfFailed();
            fail("failed copy did not throw");
          } catch (CopyFailedException expected) {
            // the documented outcome
          }
        }
        for (int g = 0; g < GUARD; g++) {
          assertEquals((byte) 0x5a, dst.get(ValueLayout.JAVA_BYTE, g), "guard before dst");
          assertEquals((byte) 0x5a, dst.get(ValueLayout.JAVA_BYTE, GUARD + length + g),
              "guard after dst");
        }
        c.release();
      } finally {
        mover.close();
      }
    }
  }

  /** The flyweight itself: any offset/alignment is either accepted in bounds or refused. */
  @FuzzTest(maxDuration = "10s")
  void flyweightRejectsBadPlacement(FuzzedDataProvider data) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment seg = arena.allocate(data.consumeInt(0, 256), 32);
      long offset = data.consumeLong();
      CompletionRecord r = new CompletionRecord();
      try {
        r.wrap(seg, offset);
      } catch (IndexOutOfBoundsException | IllegalArgumentException expected) {
        return;
      }
      assertTrue(offset >= 0 && offset <= seg.byteSize() - CR_SIZE && offset % 32 == 0);
      byte[] bytes = data.consumeBytes(CR_SIZE);
      MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, offset, bytes.length);
      assertTrue(r.statusAcquire() >= 0 && r.statusAcquire() <= 255);
      assertTrue(r.bytesCompleted() >= 0 && r.bytesCompleted() <= 0xFFFF_FFFFL);
      assertTrue(r.invalidFlags() >= 0 && r.invalidFlags() <= 0xFFFFFF);
      statusName(r.statusAcquire());
    }
  }
}
