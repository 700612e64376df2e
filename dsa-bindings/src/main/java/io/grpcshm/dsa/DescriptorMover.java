package io.grpcshm.dsa;

import static io.grpcshm.dsa.internal.Idxd.*;

import io.grpcshm.dsa.internal.CompletionRecord;
import io.grpcshm.dsa.internal.Descriptor;
import io.grpcshm.dsa.internal.Libc;
import io.grpcshm.dsa.internal.Memory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.logging.Logger;

/**
 * A mover that speaks the DSA descriptor protocol to a {@link Portal}: the same code drives real
 * DSA and the software engine. Per completion handle it owns one descriptor, one 32-byte aligned
 * completion record and room for a batch list, all pre-allocated.
 *
 * <p>Progress is driven by polling: when a copy completes only in part (a page fault with
 * {@code bytes_completed}, or a transfer longer than {@code max_transfer_size}) the poll
 * submits the rest, as the DSA spec expects software to do.
 */
final class DescriptorMover extends AbstractMover {
  private static final Logger LOG = Logger.getLogger(DescriptorMover.class.getName());
  private static final int PHASE_SINGLE = 0;
  private static final int PHASE_BATCH = 1;
  private static final int PHASE_REPAIR = 2;
  /** Give up after this many page faults in a row that made no progress. */
  private static final int MAX_STALLED_FAULTS = 4;

  private final Portal portal;
  private final String description;
  private final int slots;
  private final int maxBatch;
  private final int batchStride;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment[] descSeg;
  private final Descriptor[] desc;
  private final CompletionRecord[] rec;
  private final MemorySegment lists;
  private final MemorySegment subRecs;
  private final Descriptor[] subDesc; // flyweights for building/reading batch lists, per slot
  private final CompletionRecord[] subRec;
  private volatile boolean batchSupported = true;

  // Per-slot progress of the copy in flight.
  private final int[] phase;
  private final long[] curSrc;
  private final long[] curDst;
  private final long[] remaining;
  private final long[] curLen;
  private final long[] done;
  private final int[] ccFlag;
  private final int[] batchCount;
  private final int[] repairIdx;
  private final boolean[] inRepair;
  private final boolean[] needsSubmit;
  private final int[] stalled;

  DescriptorMover(MoverKind kind, Portal portal, int wantedSlots) {
    super(kind, Math.max(1, Math.min(wantedSlots, portal.maxInFlight())));
    this.portal = portal;
    this.slots = maxInFlight();
    this.maxBatch = Math.max(0, Math.min(64, portal.maxBatchSize()));
    this.description = portal.describe();
    MemorySegment descs = arena.allocate((long) slots * DESC_SIZE, DESC_ALIGN);
    MemorySegment recs = arena.allocate((long) slots * CR_SIZE, CR_ALIGN);
    this.batchStride = Math.max(1, maxBatch);
    int b = batchStride;
    lists = arena.allocate((long) slots * b * DESC_SIZE, DESC_ALIGN);
    subRecs = arena.allocate((long) slots * b * CR_SIZE, CR_ALIGN);
    descSeg = new MemorySegment[slots];
    desc = new Descriptor[slots];
    rec = new CompletionRecord[slots];
    subDesc = new Descriptor[slots];
    subRec = new CompletionRecord[slots];
    for (int i = 0; i < slots; i++) {
      descSeg[i] = descs.asSlice((long) i * DESC_SIZE, DESC_SIZE);
      desc[i] = new Descriptor().wrap(descSeg[i], 0);
      rec[i] = new CompletionRecord().wrap(recs, (long) i * CR_SIZE);
      subDesc[i] = new Descriptor();
      subRec[i] = new CompletionRecord();
    }
    phase = new int[slots];
    curSrc = new long[slots];
    curDst = new long[slots];
    remaining = new long[slots];
    curLen = new long[slots];
    done = new long[slots];
    ccFlag = new int[slots];
    batchCount = new int[slots];
    repairIdx = new int[slots];
    inRepair = new boolean[slots];
    needsSubmit = new boolean[slots];
    stalled = new int[slots];
  }

  @Override
  public String description() { return description; }

  Portal portal() { return portal; }

  @Override
  public long maxTransferSize() { return portal.maxTransferSize(); }

  @Override
  public int maxBatchSize() { return Math.max(1, maxBatch); }

  private int cc(boolean inject) {
    return inject && portal.cacheControl() ? FLAG_CC : 0;
  }

  @Override
  int start(Completion c, MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection) {
    int i = c.slot;
    if (length == 0) {
      c.succeed();
      return ACCEPTED;
    }
    phase[i] = PHASE_SINGLE;
    inRepair[i] = false;
    curSrc[i] = src.address() + srcOffset;
    curDst[i] = dst.address() + dstOffset;
    remaining[i] = length;
    done[i] = 0;
    stalled[i] = 0;
    ccFlag[i] = cc(cacheInjection);
    return check(submitSingle(i));
  }

  @Override
  int startBatch(Completion c, Batch b) {
    int i = c.slot;
    int n = b.size;
    ccFlag[i] = cc(b.cacheInjection);
    done[i] = 0;
    stalled[i] = 0;
    batchCount[i] = n;
    repairIdx[i] = 0;
    inRepair[i] = false;
    boolean fits = batchSupported && maxBatch >= 2 && n <= maxBatch;
    long listBase = (long) i * batchStride * DESC_SIZE;
    for (int k = 0; k < n; k++) {
      fits &= b.lengths[k] <= portal.maxTransferSize() && b.lengths[k] > 0;
      subRecord(i, k).clear();
      subDesc(i, k).clear()
          .opcodeAndFlags(OP_MEMMOVE, FLAG_CRAV | FLAG_RCR | ccFlag[i])
          .completionAddr(subRec[i].address())
          .srcAddr(b.srcs[k].address() + b.srcOffsets[k])
          .dstAddr(b.dsts[k].address() + b.dstOffsets[k])
          .xferSize(Math.min(b.lengths[k], 0xFFFF_FFFFL));
    }
    if (!fits) {
      // Run the list one descriptor at a time (splits, zero lengths, no batch support).
      phase[i] = PHASE_REPAIR;
      return enterRepair(c);
    }
    phase[i] = PHASE_BATCH;
    rec[i].clear();
    desc[i].clear()
        .opcodeAndFlags(OP_BATCH, FLAG_CRAV | FLAG_RCR)
        .completionAddr(rec[i].address())
        .descListAddr(lists.address() + listBase)
        .descCount(n);
    int r = portal.submit(descSeg[i]);
    if (r == Portal.BATCH_UNSUPPORTED) {
      batchSupported = false;
      phase[i] = PHASE_REPAIR;
      return enterRepair(c);
    }
    return check(r);
  }

  /** Enters the repair walk right away; later polls continue it. */
  private int enterRepair(Completion c) {
    repair(c, c.slot);
    return ACCEPTED;
  }

  private Descriptor subDesc(int i, int k) {
    return subDesc[i].wrap(lists, ((long) i * batchStride + k) * DESC_SIZE);
  }

  private CompletionRecord subRecord(int i, int k) {
    return subRec[i].wrap(subRecs, ((long) i * batchStride + k) * CR_SIZE);
  }

  private int check(int r) {
    if (r == Portal.ACCEPTED || r == Portal.RETRY) {
      return r == Portal.ACCEPTED ? ACCEPTED : RETRY;
    }
    throw new IllegalStateException(kind() + " descriptor submission failed: "
        + Libc.strerror(-r));
  }

  /** Builds and submits the next MEMMOVE of the current single copy. */
  private int submitSingle(int i) {
    long len = Math.min(remaining[i], portal.maxTransferSize());
    curLen[i] = len;
    rec[i].clear();
    desc[i].clear()
        .opcodeAndFlags(OP_MEMMOVE, FLAG_CRAV | FLAG_RCR | ccFlag[i])
        .completionAddr(rec[i].address())
        .srcAddr(curSrc[i])
        .dstAddr(curDst[i])
        .xferSize(len);
    int r = portal.submit(descSeg[i]);
    needsSubmit[i] = r == Portal.RETRY;
    return r;
  }

  @Override
  void poll(Completion c) {
    int i = c.slot;
    if (needsSubmit[i]) {
      resubmit(c, i); // the queue was full last time; the record is still clear
      return;
    }
    switch (phase[i]) {
      case PHASE_SINGLE -> pollSingle(c, i);
      case PHASE_BATCH -> {
        int st = rec[i].statusAcquire();
        if (st == 0) {
          return;
        }
        int code = st & STATUS_MASK;
        if (code == COMP_SUCCESS) {
          c.succeed();
        } else if (code == COMP_BATCH_FAIL) {
          phase[i] = PHASE_REPAIR; // some sub-descriptors failed: finish them one by one
          repairIdx[i] = 0;
          repair(c, i);
        } else {
          c.fail(code, 0);
        }
      }
      case PHASE_REPAIR -> repair(c, i);
      default -> throw new IllegalStateException("bad phase " + phase[i]);
    }
  }

  private boolean resubmit(Completion c, int i) {
    int r = submitSingle(i);
    if (r == Portal.ACCEPTED || r == Portal.RETRY) {
      return r == Portal.ACCEPTED;
    }
    c.fail(COMP_NONE, done[i]);
    return false;
  }

  private void pollSingle(Completion c, int i) {
    int st = rec[i].statusAcquire();
    if (st == 0) {
      return;
    }
    int code = st & STATUS_MASK;
    long advance;
    if (code == COMP_SUCCESS) {
      advance = curLen[i];
      stalled[i] = 0;
    } else if (code == COMP_PAGE_FAULT_NOBOF) {
      long reported = rec[i].bytesCompleted();
      // A fault with the whole transfer done cannot happen; a device that says so is lying and
      // the copy must not be reported as complete.
      if (reported < 0 || reported >= curLen[i]) {
        failSingle(c, i, code);
        return;
      }
      advance = reported;
      long fault = rec[i].faultAddr();
      boolean write = (st & STATUS_WRITE) != 0;
      long base = write ? curDst[i] : curSrc[i];
      // Trust nothing: only touch an address inside the range this copy was validated for.
      if (fault < base || fault >= base + curLen[i] || (advance == 0 && ++stalled[i] > MAX_STALLED_FAULTS)) {
        failSingle(c, i, code);
        return;
      }
      if (advance > 0) {
        stalled[i] = 0;
      }
      Memory.touch(fault, write);
    } else {
      failSingle(c, i, code);
      return;
    }
    curSrc[i] += advance;
    curDst[i] += advance;
    remaining[i] -= advance;
    done[i] += advance;
    if (remaining[i] > 0) {
      resubmit(c, i);
      return;
    }
    if (inRepair[i]) {
      inRepair[i] = false;
      phase[i] = PHASE_REPAIR;
      repairIdx[i]++;
      repair(c, i);
    } else {
      c.succeed();
    }
  }

  private void failSingle(Completion c, int i, int code) {
    inRepair[i] = false;
    c.fail(code, done[i]);
  }

  /**
   * Walks the batch list from {@code repairIdx}: finished sub-descriptors are skipped, the first
   * unfinished one (page fault or never executed) is resumed as a single copy that comes back
   * here when done.
   */
  private void repair(Completion c, int i) {
    int n = batchCount[i];
    for (int k = repairIdx[i]; k < n; k++) {
      int st = subRecord(i, k).statusAcquire() & STATUS_MASK;
      if (st == COMP_SUCCESS) {
        continue;
      }
      long bc = 0;
      if (st == COMP_PAGE_FAULT_NOBOF) {
        bc = subRec[i].bytesCompleted();
      } else if (st != COMP_NONE) {
        c.fail(st, 0);
        return;
      }
      Descriptor d = subDesc(i, k);
      long len = d.xferSize();
      repairIdx[i] = k;
      if (bc < 0 || bc >= len && st == COMP_PAGE_FAULT_NOBOF) {
        c.fail(st, 0); // a page fault that claims the whole sub-copy done is not credible
        return;
      }
      if (bc >= len) {
        continue;
      }
      phase[i] = PHASE_SINGLE;
      inRepair[i] = true;
      curSrc[i] = d.srcAddr() + bc;
      curDst[i] = d.dstAddr() + bc;
      remaining[i] = len - bc;
      stalled[i] = 0;
      int r = submitSingle(i);
      if (r != Portal.ACCEPTED && r != Portal.RETRY) {
        c.fail(COMP_NONE, 0);
      }
      return;
    }
    repairIdx[i] = n;
    c.succeed();
  }

  /**
   * Submits a NOOP and waits for its completion record: proves the queue accepts our
   * descriptors and the device writes records we can see. Returns null on success, else why not.
   */
  String probe(Duration timeout) {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment d = a.allocate(DESC_SIZE, DESC_ALIGN);
      MemorySegment r = a.allocate(CR_SIZE, CR_ALIGN);
      CompletionRecord cr = new CompletionRecord().wrap(r, 0).clear();
      new Descriptor().wrap(d, 0).clear().opcodeAndFlags(OP_NOOP, FLAG_CRAV | FLAG_RCR)
          .completionAddr(cr.address());
      long deadline = System.nanoTime() + timeout.toNanos();
      int res;
      while ((res = portal.submit(d)) == Portal.RETRY) {
        if (System.nanoTime() - deadline > 0) {
          return "NOOP probe: work queue stayed full";
        }
        Thread.yield();
      }
      if (res != Portal.ACCEPTED) {
        int errno = -res;
        return "NOOP probe: write() failed: " + Libc.strerror(errno)
            + (errno == Libc.EINVAL || errno == Libc.EOPNOTSUPP
                ? " (descriptor submission by write() needs Linux >= 6.10)" : "");
      }
      int st;
      while ((st = cr.statusAcquire()) == 0) {
        if (System.nanoTime() - deadline > 0) {
          return "NOOP probe: no completion record within " + timeout.toMillis() + " ms";
        }
        Thread.onSpinWait();
      }
      // Keep the record memory alive until the device is done with it (it is: status != 0).
      return (st & STATUS_MASK) == COMP_SUCCESS ? null
          : "NOOP probe completed with " + statusName(st);
    }
  }

  @Override
  void doClose() {
    portal.close();
    if (anyPending()) {
      // A device may still write a completion record here; freeing it could corrupt the heap.
      LOG.warning(kind() + " mover closed with copies in flight; descriptor memory leaked");
    } else {
      arena.close();
    }
  }
}
