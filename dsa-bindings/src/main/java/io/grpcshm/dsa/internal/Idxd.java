package io.grpcshm.dsa.internal;

/**
 * Every constant and every byte offset of the Intel DSA user ABI in one place.
 *
 * <p>Source: Linux {@code include/uapi/linux/idxd.h} ({@code struct dsa_hw_desc},
 * {@code struct dsa_completion_record}, {@code enum dsa_opcode}, {@code enum
 * dsa_completion_status}, {@code IDXD_OP_FLAG_*}); both structs are {@code __attribute__((packed))}
 * and little-endian. GENCAP bit positions follow {@code union gen_cap_reg} in the kernel's
 * {@code drivers/dma/idxd/registers.h}. The software copy engine speaks exactly this protocol, so
 * the descriptor code paths run in CI on machines without DSA.
 */
public final class Idxd {
  private Idxd() {}

  // ---- struct dsa_hw_desc: 64 bytes --------------------------------------------------------
  public static final int DESC_SIZE = 64;
  /** Descriptors (and batch descriptor lists) are 64-byte aligned, like the portal write. */
  public static final int DESC_ALIGN = 64;
  /** u32: pasid:20 (bits 0-19), rsvd:11, priv:1 (bit 31). */
  public static final long DESC_PASID_PRIV = 0;
  /** u32: flags:24 (bits 0-23), opcode:8 (bits 24-31): the opcode is byte 7. */
  public static final long DESC_FLAGS = 4;
  public static final long DESC_OPCODE = 7;
  public static final long DESC_COMPLETION_ADDR = 8;
  /** union { src_addr, rdback_addr, pattern, desc_list_addr }. */
  public static final long DESC_SRC_ADDR = 16;
  /** union { dst_addr, rdback_addr2, src2_addr, comp_pattern }. */
  public static final long DESC_DST_ADDR = 24;
  /** union { u32 xfer_size, u32 desc_count }. */
  public static final long DESC_XFER_SIZE = 32;
  public static final long DESC_INT_HANDLE = 36;
  public static final long DESC_RSVD1 = 38;
  /** Operation-specific 24 bytes; {@code expected_res} (COMPARE) is its first byte. */
  public static final long DESC_OP_SPECIFIC = 40;
  public static final int DESC_OP_SPECIFIC_SIZE = 24;

  // ---- struct dsa_completion_record: 32 bytes, 32-byte aligned -----------------------------
  public static final int CR_SIZE = 32;
  public static final int CR_ALIGN = 32;
  /** volatile u8, written last by the device: 0 means "not yet". */
  public static final long CR_STATUS = 0;
  /** union { result, dif_status }: COMPARE puts 0 (equal) / 1 (different) here. */
  public static final long CR_RESULT = 1;
  public static final long CR_RSVD = 2;
  /** u32; for BATCH it counts completed descriptors. */
  public static final long CR_BYTES_COMPLETED = 4;
  public static final long CR_FAULT_ADDR = 8;
  /** u32 invalid_flags:24 (first word of the 16-byte op-specific union). */
  public static final long CR_INVALID_FLAGS = 16;
  public static final long CR_OP_SPECIFIC = 16;
  public static final int CR_OP_SPECIFIC_SIZE = 16;

  // ---- enum dsa_opcode ---------------------------------------------------------------------
  public static final int OP_NOOP = 0;
  public static final int OP_BATCH = 1;
  public static final int OP_DRAIN = 2;
  public static final int OP_MEMMOVE = 3;
  public static final int OP_MEMFILL = 4;
  public static final int OP_COMPARE = 5;
  public static final int OP_COMPVAL = 6;
  public static final int OP_CR_DELTA = 7;
  public static final int OP_AP_DELTA = 8;
  public static final int OP_DUALCAST = 9;
  public static final int OP_CRCGEN = 0x10;
  public static final int OP_COPY_CRC = 0x11;
  public static final int OP_CFLUSH = 0x20;

  // ---- IDXD_OP_FLAG_* ----------------------------------------------------------------------
  public static final int FLAG_FENCE = 0x0001;
  public static final int FLAG_BOF = 0x0002;
  public static final int FLAG_CRAV = 0x0004;
  public static final int FLAG_RCR = 0x0008;
  public static final int FLAG_RCI = 0x0010;
  public static final int FLAG_CRSTS = 0x0020;
  public static final int FLAG_CR = 0x0080;
  /** Cache control: 1 = allocate destination writes in the LLC (cache injection). */
  public static final int FLAG_CC = 0x0100;
  public static final int FLAG_ADDR1_TCS = 0x0200;
  public static final int FLAG_ADDR2_TCS = 0x0400;
  public static final int FLAG_ADDR3_TCS = 0x0800;
  public static final int FLAG_CR_TCS = 0x1000;
  public static final int FLAG_STORD = 0x2000;
  public static final int FLAG_DRDBK = 0x4000;
  public static final int FLAG_DSTS = 0x8000;

  // ---- enum dsa_completion_status ----------------------------------------------------------
  public static final int COMP_NONE = 0;
  public static final int COMP_SUCCESS = 1;
  public static final int COMP_SUCCESS_PRED = 2;
  public static final int COMP_PAGE_FAULT_NOBOF = 3;
  public static final int COMP_PAGE_FAULT_IR = 4;
  public static final int COMP_BATCH_FAIL = 5;
  public static final int COMP_BATCH_PAGE_FAULT = 6;
  public static final int COMP_BAD_OPCODE = 0x10;
  public static final int COMP_INVALID_FLAGS = 0x11;
  public static final int COMP_NOZERO_RESERVE = 0x12;
  public static final int COMP_XFER_ERANGE = 0x13;
  public static final int COMP_DESC_CNT_ERANGE = 0x14;
  public static final int COMP_DR_ERANGE = 0x15;
  public static final int COMP_OVERLAP_BUFFERS = 0x16;
  public static final int COMP_DESCLIST_ALIGN = 0x18;
  public static final int COMP_CRA_XLAT = 0x1a;
  public static final int COMP_CRA_ALIGN = 0x1b;
  public static final int COMP_ADDR_ALIGN = 0x1c;
  public static final int COMP_TRANSLATION_FAIL = 0x22;
  /** DSA_COMP_STATUS_MASK: the low 7 bits are the status code. */
  public static final int STATUS_MASK = 0x7f;
  /** DSA_COMP_STATUS_WRITE: set with a page fault that happened on a write (destination). */
  public static final int STATUS_WRITE = 0x80;

  // ---- union gen_cap_reg (sysfs gen_cap) ---------------------------------------------------
  public static final long GENCAP_BLOCK_ON_FAULT = 1L;
  public static final long GENCAP_OVERLAP_COPY = 1L << 1;
  public static final long GENCAP_CACHE_CONTROL_MEM = 1L << 2;
  public static final long GENCAP_CACHE_CONTROL_CACHE = 1L << 3;

  /** Human-readable name of a completion status byte (mask applied). */
  public static String statusName(int status) {
    int s = status & STATUS_MASK;
    return switch (s) {
      case COMP_NONE -> "NONE";
      case COMP_SUCCESS -> "SUCCESS";
      case COMP_SUCCESS_PRED -> "SUCCESS_PRED";
      case COMP_PAGE_FAULT_NOBOF -> "PAGE_FAULT_NOBOF";
      case COMP_PAGE_FAULT_IR -> "PAGE_FAULT_IR";
      case COMP_BATCH_FAIL -> "BATCH_FAIL";
      case COMP_BATCH_PAGE_FAULT -> "BATCH_PAGE_FAULT";
      case COMP_BAD_OPCODE -> "BAD_OPCODE";
      case COMP_INVALID_FLAGS -> "INVALID_FLAGS";
      case COMP_NOZERO_RESERVE -> "NOZERO_RESERVE";
      case COMP_XFER_ERANGE -> "XFER_ERANGE";
      case COMP_DESC_CNT_ERANGE -> "DESC_CNT_ERANGE";
      case COMP_DR_ERANGE -> "DR_ERANGE";
      case COMP_OVERLAP_BUFFERS -> "OVERLAP_BUFFERS";
      case COMP_DESCLIST_ALIGN -> "DESCLIST_ALIGN";
      case COMP_CRA_XLAT -> "CRA_XLAT";
      case COMP_CRA_ALIGN -> "CRA_ALIGN";
      case COMP_ADDR_ALIGN -> "ADDR_ALIGN";
      case COMP_TRANSLATION_FAIL -> "TRANSLATION_FAIL";
      default -> "STATUS_0x" + Integer.toHexString(s);
    };
  }
}
