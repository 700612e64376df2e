package io.grpcshm.dsa;

import static io.grpcshm.dsa.internal.Idxd.*;

import io.grpcshm.dsa.internal.CompletionRecord;
import io.grpcshm.dsa.internal.Descriptor;
import io.grpcshm.dsa.internal.IdxdSysfs;
import io.grpcshm.dsa.internal.Libc;
import io.grpcshm.dsa.internal.Memory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A mover that speaks the DSA descriptor protocol to a {@link Portal}: the same code drives real
 * DSA and the software engine. Per completion handle it owns one descriptor, one 32-byte aligned
 * completion record and room for a batch list, all pre-allocated.
 *
 * <p>Progress is driven by polling: when a copy completes only in part (a page fault with
 * {@code bytes_completed}, or a transfer longer than {@code max_transfer_size}) the poll
 * submits the rest, as the DSA spec expects software to do. A batch the device could not finish
 * (a failed or faulting element, a page fault on the descriptor list) is finished element by
 * element.
 *
 * <p>A completion record that does not come within a bound derived from the calibration fails
 * the copy with {@link Completion#STATUS_NO_COMPLETION} and takes the mover out of service:
 * the engine is closed (for DSA: the queue's fd, where the kernel drains it) and its state is
 * logged as the reason.
 */
final class DescriptorMover extends AbstractMover {
  private static final Logger LOG = Logger.getLogger(DescriptorMover.class.getName());
  private static final int PHASE_SINGLE = 0;
  private static final int PHASE_BATCH = 1;
  private static final int PHASE_REPAIR = 2;
  /** Give up after this many page faults in a row that made no progress. */
  private static final int MAX_STALLED_FAULTS = 4;
  /**
   * Largest piece one descriptor gets: xfer_size is a u32, and a piece that is a multiple of
   * the page size keeps the next one page-aligned. Portals usually say less (2 GiB).
   */
  static final long MAX_PIECE = 0xFFFF_F000L;
  /** The completion bound is this many times the calibrated prediction (or the portal's floor). */
  static final long TIMEOUT_FACTOR = 50;

  private final Portal portal;
  private final String description;
  private final int slots;
  private final int maxBatch;
  private final int batchStride;
  private final long maxPiece;
  private final long timeoutFloorNanos;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment[] descSeg;
  private final Descriptor[] desc;
  private final CompletionRecord[] rec;
  private final MemorySegment lists;
  private final MemorySegment subRecs;
  private final Descriptor[] subDesc; // flyweights for building/reading batch lists, per slot
  private final CompletionRecord[] subRec;
  private volatile boolean batchSupported = true;
  /** The portal was closed after the mover went out of service: no record will come any more. */
  private volatile boolean drained;
  /** A copy was given up while its descriptor may still be in the engine: never free memory. */
  private volatile boolean gaveUpOnRecord;

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
  /** When the descriptor in flight (or waiting for queue room) is given up on. */
  private final long[] deadline;
  // Per batch element (slot * batchStride + k): what the caller asked for, in full. The list
  // descriptors hold at most a u32 size; the element walk reads these.
  private final long[] elemSrc;
  private final long[] elemDst;
  private final long[] elemLen;

  DescriptorMover(MoverKind kind, Portal portal, int wantedSlots) {
    super(kind, Math.max(1, Math.min(wantedSlots, portal.maxInFlight())));
    this.portal = portal;
    this.slots = maxInFlight();
    this.maxBatch = Math.max(0, Math.min(64, portal.maxBatchSize()));
    this.maxPiece = Math.max(1, Math.min(portal.maxTransferSize(), MAX_PIECE));
    this.timeoutFloorNanos = portal.completionTimeoutFloorNanos();
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
    deadline = new long[slots];
    elemSrc = new long[slots * b];
    elemDst = new long[slots * b];
    elemLen = new long[slots * b];
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

  /** How long a descriptor of {@code bytes} may take: max(floor, 50x the prediction). */
  long timeoutNanos(long bytes) {
    long predicted = calibration().predictNanos(bytes);
    long scaled = predicted > Long.MAX_VALUE / (2 * TIMEOUT_FACTOR) ? Long.MAX_VALUE / 2
        : predicted * TIMEOUT_FACTOR;
    return Math.max(timeoutFloorNanos, scaled);
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
    needsSubmit[i] = false;
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
    int e = i * batchStride;
    ccFlag[i] = cc(b.cacheInjection);
    done[i] = 0;
    stalled[i] = 0;
    batchCount[i] = n;
    repairIdx[i] = 0;
    inRepair[i] = false;
    needsSubmit[i] = false;
    boolean fits = batchSupported && maxBatch >= 2 && n <= maxBatch;
    for (int k = 0; k < n; k++) {
      elemSrc[e + k] = b.srcs[k].address() + b.srcOffsets[k];
      elemDst[e + k] = b.dsts[k].address() + b.dstOffsets[k];
      elemLen[e + k] = b.lengths[k];
      fits &= b.lengths[k] > 0 && b.lengths[k] <= maxPiece;
      subRecord(i, k).clear(); // the element walk takes an empty record as "not run"
    }
    if (!fits) {
      // Run the elements one by one (splits, zero lengths, no batch support).
      phase[i] = PHASE_REPAIR;
      return enterRepair(c);
    }
    for (int k = 0; k < n; k++) {
      subDesc(i, k).clear()
          .opcodeAndFlags(OP_MEMMOVE, FLAG_CRAV | FLAG_RCR | ccFlag[i])
          .completionAddr(subRecs.address() + subRecOffset(i, k))
          .srcAddr(elemSrc[e + k])
          .dstAddr(elemDst[e + k])
          .xferSize(elemLen[e + k]);
    }
    phase[i] = PHASE_BATCH;
    rec[i].clear();
    desc[i].clear()
        .opcodeAndFlags(OP_BATCH, FLAG_CRAV | FLAG_RCR)
        .completionAddr(rec[i].address())
        .descListAddr(lists.address() + (long) e * DESC_SIZE)
        .descCount(n);
    int r = portal.submit(descSeg[i]);
    if (r == Portal.BATCH_UNSUPPORTED) {
      batchSupported = false;
      phase[i] = PHASE_REPAIR;
      return enterRepair(c);
    }
    if (r == Portal.ACCEPTED) {
      deadline[i] = System.nanoTime() + timeoutNanos(c.length());
    }
    return check(r);
  }

  /** Enters the element walk right away; later polls continue it. */
  private int enterRepair(Completion c) {
    repair(c, c.slot);
    return ACCEPTED;
  }

  private long subRecOffset(int i, int k) {
    return ((long) i * batchStride + k) * CR_SIZE;
  }

  private Descriptor subDesc(int i, int k) {
    return subDesc[i].wrap(lists, ((long) i * batchStride + k) * DESC_SIZE);
  }

  private CompletionRecord subRecord(int i, int k) {
    return subRec[i].wrap(subRecs, subRecOffset(i, k));
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
    long len = Math.min(remaining[i], maxPiece);
    curLen[i] = len;
    rec[i].clear();
    desc[i].clear()
        .opcodeAndFlags(OP_MEMMOVE, FLAG_CRAV | FLAG_RCR | ccFlag[i])
        .completionAddr(rec[i].address())
        .srcAddr(curSrc[i])
        .dstAddr(curDst[i])
        .xferSize(len);
    int r = portal.submit(descSeg[i]);
    // The bound also covers waiting for queue room, so it starts at the first refusal.
    if (r == Portal.ACCEPTED || (r == Portal.RETRY && !needsSubmit[i])) {
      deadline[i] = System.nanoTime() + timeoutNanos(len);
    }
    needsSubmit[i] = r == Portal.RETRY;
    return r;
  }

  @Override
  void poll(Completion c) {
    int i = c.slot;
    if (needsSubmit[i]) {
      if (!givenUp(c, i, null)) {
        resubmit(c, i); // the queue was full last time; the record is still clear
      }
      return;
    }
    switch (phase[i]) {
      case PHASE_SINGLE -> pollSingle(c, i);
      case PHASE_BATCH -> pollBatch(c, i);
      case PHASE_REPAIR -> repair(c, i);
      default -> throw new IllegalStateException("bad phase " + phase[i]);
    }
  }

  private void pollBatch(Completion c, int i) {
    int st = rec[i].statusAcquire();
    if (st == 0) {
      givenUp(c, i, rec[i]);
      return;
    }
    int code = st & STATUS_MASK;
    switch (code) {
      case COMP_SUCCESS -> c.succeed();
      // Recoverable: some elements did not finish (BATCH_FAIL), the device could not read the
      // rest of the list (BATCH_PAGE_FAULT), or could not write a record (CRA_XLAT). Each
      // element's own record says what happened to it; the walk finishes the others.
      case COMP_BATCH_FAIL, COMP_BATCH_PAGE_FAULT, COMP_CRA_XLAT -> {
        phase[i] = PHASE_REPAIR;
        repairIdx[i] = 0;
        repair(c, i);
      }
      default -> fail(c, i, code);
    }
  }

  /**
   * Nothing from the engine yet ({@code record} still zero, or the queue still full): gives up
   * on the copy if the engine was shut down or the bound has passed. True if it gave up.
   */
  private boolean givenUp(Completion c, int i, CompletionRecord record) {
    if (drained) {
      // Read the record again: the drain may have completed it after the first look.
      if (record != null && record.statusAcquire() != 0) {
        return false;
      }
      fail(c, i, Completion.STATUS_NO_COMPLETION);
      return true;
    }
    if (System.nanoTime() - deadline[i] < 0) {
      return false;
    }
    String what = needsSubmit[i] ? "the work queue stayed full"
        : "no completion record";
    String op = phase[i] == PHASE_BATCH ? "a BATCH of " + batchCount[i] + " copies ("
        + c.length() + " bytes)" : "a " + curLen[i] + "-byte MEMMOVE";
    long bound = timeoutNanos(phase[i] == PHASE_BATCH ? c.length() : curLen[i]);
    gaveUpOnRecord = true;
    fail(c, i, Completion.STATUS_NO_COMPLETION);
    outOfService(what + " for " + op + " within " + bound / 1_000_000 + " ms (max("
        + timeoutFloorNanos / 1_000_000 + " ms, " + TIMEOUT_FACTOR + " x predicted "
        + calibration().predictNanos(phase[i] == PHASE_BATCH ? c.length() : curLen[i]) / 1000
        + " us)); " + health());
    return true;
  }

  private String health() {
    try {
      return portal.health();
    } catch (RuntimeException e) {
      return "engine state unreadable: " + e;
    }
  }

  /** Out of service for good: stop the engine so nothing more is written, then say so. */
  private void outOfService(String reason) {
    if (takeOutOfService(reason)) {
      try {
        portal.close();
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, kind() + " engine did not close cleanly", e);
      }
      drained = true;
    }
  }

  private void resubmit(Completion c, int i) {
    int r;
    try {
      r = submitSingle(i);
    } catch (IllegalStateException e) {
      r = -Libc.ENODEV; // the portal was closed under us: out of service or closing
    }
    if (r != Portal.ACCEPTED && r != Portal.RETRY) {
      fail(c, i, drained ? Completion.STATUS_NO_COMPLETION : COMP_NONE);
    }
  }

  private void pollSingle(Completion c, int i) {
    int st = rec[i].statusAcquire(); // read once: the record is device memory
    if (st == 0) {
      givenUp(c, i, rec[i]);
      return;
    }
    int code = st & STATUS_MASK;
    long advance;
    if (code == COMP_SUCCESS) {
      advance = curLen[i];
      stalled[i] = 0;
    } else if (code == COMP_PAGE_FAULT_NOBOF || code == COMP_CRA_XLAT) {
      long reported = rec[i].bytesCompleted();
      // A data fault with the whole transfer done cannot happen; a device that says so is
      // lying and the copy must not be reported as complete. A record fault (CRA_XLAT) may
      // come after the whole transfer.
      if (reported < 0 || reported > curLen[i]
          || (reported == curLen[i] && code == COMP_PAGE_FAULT_NOBOF)) {
        fail(c, i, code);
        return;
      }
      advance = reported;
      if (advance == 0 && ++stalled[i] > MAX_STALLED_FAULTS) {
        fail(c, i, code);
        return;
      }
      if (advance > 0) {
        stalled[i] = 0;
      }
      if (code == COMP_PAGE_FAULT_NOBOF
          && !touchFault(st, rec[i].faultAddr(), curSrc[i], curDst[i], curLen[i])) {
        fail(c, i, code);
        return;
      }
      // CRA_XLAT: the record's own page was not mapped; clearing it for the resubmission maps it.
    } else {
      fail(c, i, code);
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

  /**
   * Maps the faulting page before a resubmission. Trust nothing: only an address inside the
   * range this piece was validated for is touched. False if the address is outside it.
   */
  private static boolean touchFault(int status, long fault, long src, long dst, long len) {
    boolean write = (status & STATUS_WRITE) != 0;
    long base = write ? dst : src;
    if (fault < base || fault - base >= len) {
      return false;
    }
    Memory.touch(fault, write);
    return true;
  }

  private void fail(Completion c, int i, int status) {
    inRepair[i] = false;
    needsSubmit[i] = false;
    c.fail(status, done[i]);
  }

  /**
   * Walks the batch's elements from {@code repairIdx}: finished ones are counted and skipped,
   * the first unfinished one (page fault, record fault, or never executed) is resumed as a
   * single copy - split into pieces as needed - that comes back here when done.
   */
  private void repair(Completion c, int i) {
    int n = batchCount[i];
    int e = i * batchStride;
    for (int k = repairIdx[i]; k < n; k++) {
      CompletionRecord r = subRecord(i, k);
      int st = r.statusAcquire(); // read once: the record is device memory
      int code = st & STATUS_MASK;
      long len = elemLen[e + k];
      if (code == COMP_SUCCESS) {
        done[i] += len;
        continue;
      }
      long bc = 0;
      if (code == COMP_PAGE_FAULT_NOBOF || code == COMP_CRA_XLAT) {
        bc = r.bytesCompleted();
        // A page fault claiming the whole element done is not credible (see pollSingle).
        if (bc > len || (bc == len && code == COMP_PAGE_FAULT_NOBOF)) {
          repairIdx[i] = k;
          fail(c, i, code);
          return;
        }
        if (code == COMP_PAGE_FAULT_NOBOF
            && !touchFault(st, r.faultAddr(), elemSrc[e + k], elemDst[e + k], len)) {
          repairIdx[i] = k;
          fail(c, i, code);
          return;
        }
      } else if (code != COMP_NONE) {
        repairIdx[i] = k;
        fail(c, i, code);
        return;
      }
      done[i] += bc;
      if (bc == len) {
        continue; // CRA_XLAT after the whole element: only its record was lost
      }
      repairIdx[i] = k;
      phase[i] = PHASE_SINGLE;
      inRepair[i] = true;
      curSrc[i] = elemSrc[e + k] + bc;
      curDst[i] = elemDst[e + k] + bc;
      remaining[i] = len - bc;
      stalled[i] = 0;
      int res;
      try {
        res = submitSingle(i);
      } catch (IllegalStateException ex) {
        res = -Libc.ENODEV; // the portal was closed under us
      }
      if (res != Portal.ACCEPTED && res != Portal.RETRY) {
        fail(c, i, drained ? Completion.STATUS_NO_COMPLETION : COMP_NONE);
      }
      return;
    }
    repairIdx[i] = n;
    c.succeed();
  }

  /**
   * Submits a NOOP and waits for its completion record: proves the queue accepts our
   * descriptors and the device writes records we can see. Returns null on success, else why not.
   * The descriptor and record come from the mover's arena, which is freed only after the portal
   * is closed (where the kernel drains the queue): a device that answers after the timeout writes
   * into live memory.
   */
  String probe(Duration timeout) {
    MemorySegment d = arena.allocate(DESC_SIZE, DESC_ALIGN);
    MemorySegment r = arena.allocate(CR_SIZE, CR_ALIGN);
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
      // On kernels without the write() path the char device has no write method: EINVAL
      // (never EOPNOTSUPP). A NOOP with an aligned record passes every check of the path.
      return "NOOP probe: write() failed: " + Libc.strerror(errno)
          + (errno == Libc.EINVAL ? " - this queue's device takes no descriptors by write() ("
              + IdxdSysfs.writePathNote(System.getProperty("os.version")) + ")" : "");
    }
    int st;
    while ((st = cr.statusAcquire()) == 0) {
      if (System.nanoTime() - deadline > 0) {
        return "NOOP probe: no completion record within " + timeout.toMillis() + " ms ("
            + health() + ")";
      }
      Thread.onSpinWait();
    }
    return (st & STATUS_MASK) == COMP_SUCCESS ? null
        : "NOOP probe completed with " + statusName(st);
  }

  @Override
  void doClose() {
    portal.close(); // drains first: after this no record is written
    drained = true; // copies still polled fail at once instead of waiting out their bound
    if (anyPending() || gaveUpOnRecord) {
      // A copy was given up on while the engine had it: a device may still write there (a
      // drain that could not finish); freeing the memory could corrupt the heap.
      LOG.warning(kind() + " mover closed with copies in flight or given up on;"
          + " descriptor memory leaked");
    } else {
      arena.close();
    }
  }
}
