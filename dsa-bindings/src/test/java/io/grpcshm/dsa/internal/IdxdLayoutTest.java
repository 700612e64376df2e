package io.grpcshm.dsa.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * Byte-for-byte checks against Linux include/uapi/linux/idxd.h (struct dsa_hw_desc and struct
 * dsa_completion_record, both packed, little-endian, x86-64 bit-field order: first field in the
 * least significant bits).
 */
class IdxdLayoutTest {
  /**
   * struct dsa_hw_desc as declared in idxd.h, with the unions reduced to their first member:
   * u32 pasid:20,rsvd:11,priv:1 | u32 flags:24,opcode:8 | u64 completion_addr | u64 src_addr |
   * u64 dst_addr | u32 xfer_size | u16 int_handle | u16 rsvd1 | u8 op_specific[24].
   */
  static final StructLayout HW_DESC = MemoryLayout.structLayout(
      ValueLayout.JAVA_INT.withName("pasid_priv"),
      ValueLayout.JAVA_INT.withName("flags_opcode"),
      ValueLayout.JAVA_LONG.withName("completion_addr"),
      ValueLayout.JAVA_LONG.withName("src_addr"),
      ValueLayout.JAVA_LONG.withName("dst_addr"),
      ValueLayout.JAVA_INT.withName("xfer_size"),
      ValueLayout.JAVA_SHORT.withName("int_handle"),
      ValueLayout.JAVA_SHORT.withName("rsvd1"),
      MemoryLayout.sequenceLayout(24, ValueLayout.JAVA_BYTE).withName("op_specific"));

  /** struct dsa_completion_record: u8 status | u8 result | u16 rsvd | u32 bytes_completed |
   *  u64 fault_addr | union (u32 invalid_flags:24,rsvd2:8 ... u8 op_specific[16]). */
  static final StructLayout COMPLETION = MemoryLayout.structLayout(
      ValueLayout.JAVA_BYTE.withName("status"),
      ValueLayout.JAVA_BYTE.withName("result"),
      ValueLayout.JAVA_SHORT.withName("rsvd"),
      ValueLayout.JAVA_INT.withName("bytes_completed"),
      ValueLayout.JAVA_LONG.withName("fault_addr"),
      MemoryLayout.sequenceLayout(16, ValueLayout.JAVA_BYTE).withName("op_specific"));

  private static long off(StructLayout l, String name) {
    return l.byteOffset(MemoryLayout.PathElement.groupElement(name));
  }

  @Test
  void offsetsMatchTheHeaderStructs() {
    assertEquals(64, HW_DESC.byteSize());
    assertEquals(Idxd.DESC_SIZE, HW_DESC.byteSize());
    assertEquals(Idxd.DESC_PASID_PRIV, off(HW_DESC, "pasid_priv"));
    assertEquals(Idxd.DESC_FLAGS, off(HW_DESC, "flags_opcode"));
    assertEquals(Idxd.DESC_COMPLETION_ADDR, off(HW_DESC, "completion_addr"));
    assertEquals(Idxd.DESC_SRC_ADDR, off(HW_DESC, "src_addr"));
    assertEquals(Idxd.DESC_DST_ADDR, off(HW_DESC, "dst_addr"));
    assertEquals(Idxd.DESC_XFER_SIZE, off(HW_DESC, "xfer_size"));
    assertEquals(Idxd.DESC_INT_HANDLE, off(HW_DESC, "int_handle"));
    assertEquals(Idxd.DESC_RSVD1, off(HW_DESC, "rsvd1"));
    assertEquals(Idxd.DESC_OP_SPECIFIC, off(HW_DESC, "op_specific"));
    assertEquals(32, COMPLETION.byteSize());
    assertEquals(Idxd.CR_SIZE, COMPLETION.byteSize());
    assertEquals(Idxd.CR_STATUS, off(COMPLETION, "status"));
    assertEquals(Idxd.CR_RESULT, off(COMPLETION, "result"));
    assertEquals(Idxd.CR_RSVD, off(COMPLETION, "rsvd"));
    assertEquals(Idxd.CR_BYTES_COMPLETED, off(COMPLETION, "bytes_completed"));
    assertEquals(Idxd.CR_FAULT_ADDR, off(COMPLETION, "fault_addr"));
    assertEquals(Idxd.CR_INVALID_FLAGS, off(COMPLETION, "op_specific"));
  }

  @Test
  void constantsMatchTheHeader() {
    // #define IDXD_OP_FLAG_* in idxd.h
    assertEquals(0x0001, Idxd.FLAG_FENCE);
    assertEquals(0x0002, Idxd.FLAG_BOF);
    assertEquals(0x0004, Idxd.FLAG_CRAV);
    assertEquals(0x0008, Idxd.FLAG_RCR);
    assertEquals(0x0010, Idxd.FLAG_RCI);
    assertEquals(0x0020, Idxd.FLAG_CRSTS);
    assertEquals(0x0080, Idxd.FLAG_CR);
    assertEquals(0x0100, Idxd.FLAG_CC);
    assertEquals(0x8000, Idxd.FLAG_DSTS);
    // enum dsa_opcode
    assertEquals(0, Idxd.OP_NOOP);
    assertEquals(1, Idxd.OP_BATCH);
    assertEquals(2, Idxd.OP_DRAIN);
    assertEquals(3, Idxd.OP_MEMMOVE);
    assertEquals(4, Idxd.OP_MEMFILL);
    assertEquals(5, Idxd.OP_COMPARE);
    assertEquals(0x10, Idxd.OP_CRCGEN);
    assertEquals(0x20, Idxd.OP_CFLUSH);
    // enum dsa_completion_status
    assertEquals(1, Idxd.COMP_SUCCESS);
    assertEquals(3, Idxd.COMP_PAGE_FAULT_NOBOF);
    assertEquals(5, Idxd.COMP_BATCH_FAIL);
    assertEquals(0x10, Idxd.COMP_BAD_OPCODE);
    assertEquals(0x14, Idxd.COMP_DESC_CNT_ERANGE);
    assertEquals(0x22, Idxd.COMP_TRANSLATION_FAIL);
    assertEquals(0x7f, Idxd.STATUS_MASK);
    assertEquals(0x80, Idxd.STATUS_WRITE);
  }

  @Test
  void memmoveDescriptorEncodesByteForByte() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment s = a.allocate(64, 64);
      new Descriptor().wrap(s, 0).clear()
          .pasid(0xABCDE, true)
          .opcodeAndFlags(Idxd.OP_MEMMOVE, Idxd.FLAG_CRAV | Idxd.FLAG_RCR | Idxd.FLAG_CC)
          .completionAddr(0x1122334455667780L)
          .srcAddr(0x0102030405060708L)
          .dstAddr(0x1112131415161718L)
          .xferSize(0xA1B2C3D4L);
      byte[] expected = new byte[64];
      // u32 at 0: pasid (bits 0-19) = 0xABCDE, priv (bit 31) = 1 -> 0x800ABCDE LE
      put(expected, 0, 0x800ABCDEL, 4);
      // u32 at 4: flags (bits 0-23) = 0x10C, opcode (bits 24-31) = 3 -> 0x0300010C LE
      put(expected, 4, 0x0300010CL, 4);
      put(expected, 8, 0x1122334455667780L, 8);
      put(expected, 16, 0x0102030405060708L, 8);
      put(expected, 24, 0x1112131415161718L, 8);
      put(expected, 32, 0xA1B2C3D4L, 4);
      assertArrayEquals(expected, s.toArray(ValueLayout.JAVA_BYTE));
      assertEquals(3, s.get(ValueLayout.JAVA_BYTE, 7), "opcode is byte 7");
      Descriptor d = new Descriptor().wrap(s, 0);
      assertEquals(Idxd.OP_MEMMOVE, d.opcode());
      assertEquals(0x10C, d.flags());
      assertEquals(0xABCDE, d.pasid());
      assertTrue(d.priv());
      assertEquals(0xA1B2C3D4L, d.xferSize());
    }
  }

  @Test
  void batchFillAndCompareShareTheUnionSlots() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment s = a.allocate(64, 64);
      Descriptor d = new Descriptor().wrap(s, 0).clear();
      d.opcodeAndFlags(Idxd.OP_BATCH, Idxd.FLAG_CRAV).descListAddr(0x4000).descCount(7);
      assertEquals(0x4000, s.get(ValueLayout.JAVA_LONG_UNALIGNED, 16)); // desc_list_addr
      assertEquals(7, s.get(ValueLayout.JAVA_INT_UNALIGNED, 32)); // desc_count
      d.clear().opcodeAndFlags(Idxd.OP_MEMFILL, 0).pattern(0x5A5A5A5A5A5A5A5AL);
      assertEquals(0x5A5A5A5A5A5A5A5AL, s.get(ValueLayout.JAVA_LONG_UNALIGNED, 16)); // pattern
      d.clear().opcodeAndFlags(Idxd.OP_COMPARE, 0).src2Addr(0x9000).expectedResult(1);
      assertEquals(0x9000, s.get(ValueLayout.JAVA_LONG_UNALIGNED, 24)); // src2_addr
      assertEquals(1, s.get(ValueLayout.JAVA_BYTE, 40)); // expected_res
      assertThrows(IllegalArgumentException.class, () -> d.xferSize(1L << 32));
    }
  }

  @Test
  void completionRecordReadsByteForByteAndNeedsAlignment() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment s = a.allocate(64, 32);
      byte[] raw = new byte[32];
      raw[0] = (byte) (Idxd.COMP_PAGE_FAULT_NOBOF | Idxd.STATUS_WRITE);
      raw[1] = 1;
      put(raw, 4, 0x00012345L, 4);
      put(raw, 8, 0x7F00DEADBEEF0000L, 8);
      put(raw, 16, 0x00ABCDEFL, 4);
      MemorySegment.copy(raw, 0, s, ValueLayout.JAVA_BYTE, 0, 32);
      CompletionRecord r = new CompletionRecord().wrap(s, 0);
      assertEquals(0x83, r.statusAcquire());
      assertEquals(1, r.result());
      assertEquals(0x12345, r.bytesCompleted());
      assertEquals(0x7F00DEADBEEF0000L, r.faultAddr());
      assertEquals(0xABCDEF, r.invalidFlags());
      assertEquals("PAGE_FAULT_NOBOF", Idxd.statusName(r.statusAcquire()));
      // writer side produces the same bytes
      MemorySegment t = a.allocate(32, 32);
      new CompletionRecord().wrap(t, 0).fields(1, 0x12345, 0x7F00DEADBEEF0000L, 0xABCDEF)
          .statusRelease(0x83);
      assertArrayEquals(raw, t.toArray(ValueLayout.JAVA_BYTE));
      assertThrows(IllegalArgumentException.class, () -> new CompletionRecord().wrap(s, 16));
    }
  }

  private static void put(byte[] b, int off, long v, int n) {
    for (int i = 0; i < n; i++) {
      b[off + i] = (byte) (v >>> (8 * i));
    }
  }
}
