package io.grpcshm.dsa;

import static io.grpcshm.dsa.internal.Idxd.*;
import static org.junit.jupiter.api.Assertions.*;

import io.grpcshm.dsa.internal.ArmedFaults;
import io.grpcshm.dsa.internal.CompletionRecord;
import io.grpcshm.dsa.internal.Descriptor;
import io.grpcshm.dsa.internal.SoftwareCopyEngine;
import io.grpcshm.dsa.internal.TestLibc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * How {@link DescriptorMover} recovers from what a device does besides succeeding: lost
 * completions, batch-list page faults, completion-record faults, elements too large for one
 * descriptor, a probe that times out. Software engine with fault injection, or test portals.
 */
class DescriptorMoverRecoveryTest {
  private Arena arena;
  private final ArmedFaults faults = new ArmedFaults();
  private SoftwareCopyEngine engine;

  @BeforeEach
  void setUp() {
    arena = Arena.ofShared();
    engine = new SoftwareCopyEngine(2, 16, 64 << 10, faults);
  }

  @AfterEach
  void tearDown() {
    engine.close();
    arena.close();
  }

  private MemorySegment pattern(long size, int seed) {
    MemorySegment s = arena.allocate(size, 64);
    for (long i = 0; i + 8 <= size; i += 8) {
      s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 0x9E3779B97F4A7C15L + seed);
    }
    return s;
  }

  /**
   * The software engine behind the portal interface with the interface's default completion
   * bound (the DSA one, 100 ms floor) instead of the software portal's generous one.
   */
  static final class EngineAsDevice implements Portal {
    final SoftwarePortal inner;

    EngineAsDevice(SoftwareCopyEngine engine) {
      inner = new SoftwarePortal(engine);
    }

    @Override
    public int submit(MemorySegment desc) { return inner.submit(desc); }

    @Override
    public long maxTransferSize() { return inner.maxTransferSize(); }

    @Override
    public int maxBatchSize() { return 32; }

    @Override
    public boolean cacheControl() { return false; }

    @Override
    public int maxInFlight() { return 64; }

    @Override
    public String describe() { return "software engine as a device"; }

    @Override
    public String health() { return inner.health(); }

    @Override
    public void close() { inner.close(); }
  }

  @Test
  void lostCompletionFailsTheMoveAndTakesTheMoverOutOfService() throws InterruptedException {
    DescriptorMover m = new DescriptorMover(MoverKind.SOFTWARE, new EngineAsDevice(engine), 64);
    try {
      MemorySegment src = pattern(1 << 20, 1);
      MemorySegment dst = arena.allocate(1 << 20);
      m.copy(src, 0, dst, 0, 1 << 20, false, WaitStrategy.spin()); // healthy first
      faults.loseNext(1);
      long executed = engine.executed();
      long t0 = System.nanoTime();
      Completion lost = m.submit(src, 0, dst, 0, 1 << 20, false);
      while (engine.executed() == executed) {
        Thread.onSpinWait(); // taken (and dropped) by a worker
      }
      faults.pauseWorkers(true); // a second copy then stays queued
      Thread.sleep(50); // a worker that raced the pause finds the queue empty
      Completion queued = m.submit(src, 0, dst, 0, 4096, false);
      for (WaitStrategy w : new WaitStrategy[] {WaitStrategy.spin(), WaitStrategy.park(),
          WaitStrategy.hybrid()}) {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> lost.await(w), w.name());
      }
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertEquals(Completion.State.FAILED, lost.state());
      assertTrue(lost.statusName().contains("NO_COMPLETION"), lost.statusName());
      assertTrue(ms >= 100, "the bound's floor is 100 ms: failed after " + ms + " ms");
      CopyFailedException e = assertThrows(CopyFailedException.class, lost::throwIfFailed);
      assertTrue(e.getMessage().contains("NO_COMPLETION"), e.getMessage());
      lost.release();
      assertFalse(m.isAvailable());
      String why = m.unavailableReason();
      assertTrue(why.contains("out of service") && why.contains("no completion record")
          && why.contains("1048576") && why.contains("software engine RUNNING"), why);
      // The engine was stopped (drained): what it did not run will never complete, so the
      // queued copy fails at once instead of waiting out its own bound.
      long t1 = System.nanoTime();
      assertTrue(queued.isDone());
      assertTrue((System.nanoTime() - t1) < 50_000_000L, "queued copy failed at once");
      assertEquals(Completion.State.FAILED, queued.state());
      queued.release();
      assertThrows(IllegalStateException.class,
          () -> m.submit(src, 0, dst, 0, 4096, false), "refuses work out of service");
    } finally {
      faults.pauseWorkers(false);
      m.close();
    }
    assertEquals(SoftwareCopyEngine.State.CLOSED, engine.state(), "taken out of service: stopped");
  }

  @Test
  void batchPageFaultIsFinishedElementByElement() {
    try (DescriptorMover m = new DescriptorMover(MoverKind.SOFTWARE,
        new EngineAsDevice(engine), 64)) {
      MemorySegment src = pattern(6 * 4096, 2);
      MemorySegment dst = arena.allocate(6 * 4096);
      Batch b = new Batch(6);
      for (int k = 0; k < 6; k++) {
        b.add(src, k * 4096L, dst, k * 4096L, 4096);
      }
      faults.batchPageFaultNext(2);
      long before = engine.executed();
      Completion c = m.submit(b);
      c.join(WaitStrategy.spin());
      assertEquals(6 * 4096, c.bytesCompleted());
      c.release();
      assertEquals(-1, src.mismatch(dst));
      assertEquals(1 + 4, engine.executed() - before, "the batch, then the 4 it did not reach");
    }
  }

  @Test
  void completionRecordFaultIsResubmittedFromBytesCompleted() {
    try (DescriptorMover m = new DescriptorMover(MoverKind.SOFTWARE,
        new EngineAsDevice(engine), 64)) {
      MemorySegment src = pattern(1 << 20, 3);
      MemorySegment dst = arena.allocate(1 << 20);
      faults.completionRecordFaultNext(300_000);
      long before = engine.executed();
      m.copy(src, 0, dst, 0, 1 << 20, false, WaitStrategy.spin());
      assertEquals(-1, src.mismatch(dst));
      assertEquals(2, engine.executed() - before, "the faulted descriptor and the rest");
      // Inside a batch too: the element walk resumes it.
      Batch b = new Batch(3);
      MemorySegment dst2 = arena.allocate(3 * 65536);
      for (int k = 0; k < 3; k++) {
        b.add(src, k * 65536L, dst2, k * 65536L, 65536);
      }
      faults.completionRecordFaultNext(1000);
      Completion c = m.submit(b);
      c.join(WaitStrategy.spin());
      c.release();
      assertEquals(-1, src.asSlice(0, 3 * 65536).mismatch(dst2));
    }
  }

  /**
   * A device that records every MEMMOVE and reports success without touching memory, so a copy
   * of more than 4 GiB costs nothing but address space. Optionally fails one descriptor.
   */
  static final class RecordingPortal implements Portal {
    final long maxTransfer;
    final List<long[]> moves = new ArrayList<>(); // {src, dst, len}
    int failAt = -1;

    RecordingPortal(long maxTransfer) {
      this.maxTransfer = maxTransfer;
    }

    @Override
    public synchronized int submit(MemorySegment desc) {
      Descriptor d = new Descriptor().wrap(desc, 0);
      if (d.opcode() == OP_BATCH) {
        return BATCH_UNSUPPORTED;
      }
      int status = moves.size() == failAt ? COMP_BAD_OPCODE : COMP_SUCCESS;
      if (status == COMP_SUCCESS) {
        moves.add(new long[] {d.srcAddr(), d.dstAddr(), d.xferSize()});
      }
      MemorySegment cr = MemorySegment.ofAddress(d.completionAddr()).reinterpret(CR_SIZE);
      new CompletionRecord().wrap(cr, 0).fields(0, status == COMP_SUCCESS ? d.xferSize() : 0, 0, 0)
          .statusRelease(status);
      return ACCEPTED;
    }

    @Override
    public long maxTransferSize() { return maxTransfer; }

    @Override
    public int maxBatchSize() { return 8; }

    @Override
    public boolean cacheControl() { return false; }

    @Override
    public int maxInFlight() { return 4; }

    @Override
    public String describe() { return "recording portal"; }

    @Override
    public void close() {}

    /** Bytes the recorded descriptors moved inside [src, src + len), checking they tile it. */
    synchronized long covered(long src, long dst, long len) {
      long at = 0;
      for (long[] mv : moves) {
        if (mv[0] >= src && mv[0] < src + len) {
          assertEquals(src + at, mv[0], "descriptors tile the source in order");
          assertEquals(dst + at, mv[1], "and the destination");
          assertTrue(mv[2] > 0 && mv[2] <= maxTransfer && mv[2] <= 0xFFFF_FFFFL, "size " + mv[2]);
          at += mv[2];
        }
      }
      return at;
    }
  }

  @Test
  void batchElementsOf4GiBOrMoreAreSplitNotTruncated() {
    long big = (4L << 30) + 12_345; // more than a u32 xfer_size can say
    long size = big + (1 << 20);
    // Address space only: MAP_NORESERVE, and the recording portal never touches the bytes.
    long srcBase = TestLibc.mapAnonymous(size, true);
    long dstBase = TestLibc.mapAnonymous(size, true);
    try {
      MemorySegment src = MemorySegment.ofAddress(srcBase).reinterpret(size);
      MemorySegment dst = MemorySegment.ofAddress(dstBase).reinterpret(size);
      RecordingPortal p = new RecordingPortal(1L << 31);
      try (DescriptorMover m = new DescriptorMover(MoverKind.DSA, p, 4)) {
        Batch b = new Batch(2).add(src, 0, dst, 0, big).add(src, big, dst, big, 4096);
        Completion c = m.submit(b);
        c.join(WaitStrategy.spin());
        assertEquals(big + 4096, c.bytesCompleted());
        c.release();
        assertEquals(big, p.covered(srcBase, dstBase, big), "every byte of the large element");
        assertEquals(4096, p.covered(srcBase + big, dstBase + big, 4096));

        // A failure part-way through the element walk reports the bytes really moved.
        p.moves.clear();
        p.failAt = 2; // the third 2 GiB piece of the large element fails
        c = m.submit(b);
        c.await(WaitStrategy.spin());
        assertEquals(Completion.State.FAILED, c.state());
        assertEquals(2L << 31, c.bytesCompleted(), "two 2 GiB descriptors succeeded");
        c.release();
      }
      // A portal that claims more than xfer_size (u32) can carry: split below 4 GiB anyway.
      RecordingPortal wide = new RecordingPortal(Long.MAX_VALUE);
      try (DescriptorMover m = new DescriptorMover(MoverKind.DSA, wide, 4)) {
        m.copy(src, 0, dst, 0, big, false, WaitStrategy.spin());
        assertEquals(big, wide.covered(srcBase, dstBase, big));
      }
    } finally {
      TestLibc.unmap(srcBase, size);
      TestLibc.unmap(dstBase, size);
    }
  }

  /** Accepts descriptors and never completes them; "drains" (late write) when closed. */
  static final class SilentPortal implements Portal {
    MemorySegment lastDesc;
    boolean memoryAliveAtClose;

    @Override
    public int submit(MemorySegment desc) {
      lastDesc = desc;
      return ACCEPTED;
    }

    @Override
    public long maxTransferSize() { return 1 << 20; }

    @Override
    public int maxBatchSize() { return 0; }

    @Override
    public boolean cacheControl() { return false; }

    @Override
    public int maxInFlight() { return 1; }

    @Override
    public String describe() { return "silent portal"; }

    @Override
    public void close() {
      // Closing the fd is where the kernel drains the queue: a late completion lands now.
      memoryAliveAtClose = lastDesc != null && lastDesc.scope().isAlive();
      if (memoryAliveAtClose) {
        long cr = new Descriptor().wrap(lastDesc, 0).completionAddr();
        new CompletionRecord().wrap(MemorySegment.ofAddress(cr).reinterpret(CR_SIZE), 0)
            .fields(0, 0, 0, 0).statusRelease(COMP_SUCCESS);
      }
    }
  }

  @Test
  void probeTimeoutClosesTheQueueBeforeFreeingTheRecord() {
    SilentPortal p = new SilentPortal();
    DescriptorMover m = new DescriptorMover(MoverKind.DSA, p, 1);
    String why = m.probe(Duration.ofMillis(20));
    assertNotNull(why);
    assertTrue(why.contains("no completion record within 20 ms"), why);
    m.close();
    assertNotNull(p.lastDesc, "the NOOP was submitted");
    assertTrue(p.memoryAliveAtClose,
        "probe memory was freed before the queue was closed (drained): a late write would land"
        + " in freed memory");
  }
}
