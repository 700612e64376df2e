package io.grpcshm.dsa;

import static org.junit.jupiter.api.Assertions.*;

import io.grpcshm.dsa.internal.ArmedFaults;
import io.grpcshm.dsa.internal.Idxd;
import io.grpcshm.dsa.internal.SoftwareCopyEngine;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Behaviour every available mover must share, plus the descriptor-protocol edge cases. */
class DataMoverTest {
  private static final ArmedFaults faults = new ArmedFaults();
  private static MoverRegistry registry;
  private Arena arena;

  @BeforeAll
  static void open() {
    registry = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false).dsa(false)
        .softwareWorkers(2).softwareChunkBytes(64 << 10).softwareFaults(faults));
  }

  @AfterAll
  static void close() {
    registry.close();
    long alive = Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("dsa-swengine-") && t.isAlive()).count();
    assertEquals(0, alive, "worker threads leaked after registry close");
  }

  @BeforeEach
  void arena() {
    arena = Arena.ofShared();
  }

  @AfterEach
  void free() {
    arena.close();
  }

  private MemorySegment pattern(long size, int seed) {
    MemorySegment s = arena.allocate(size, 64);
    long i = 0;
    for (; i + 8 <= size; i += 8) {
      s.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 0x9E3779B97F4A7C15L + seed);
    }
    for (; i < size; i++) {
      s.set(ValueLayout.JAVA_BYTE, i, (byte) (i + seed));
    }
    return s;
  }

  private static DataMover mover(MoverKind k) {
    return registry.get(k);
  }

  private static SoftwareCopyEngine engine() {
    return ((SoftwarePortal) ((DescriptorMover) mover(MoverKind.SOFTWARE)).portal()).engine();
  }

  @ParameterizedTest
  @EnumSource(value = MoverKind.class, names = {"CPU", "SOFTWARE", "PARALLEL"})
  void syncCopiesManySizes(MoverKind k) {
    DataMover m = mover(k);
    assertTrue(m.isAvailable());
    for (long n : new long[] {0, 1, 63, 4096, 65_537, 1 << 20, (3 << 20) + 5}) {
      MemorySegment src = pattern(n + 16, (int) n);
      MemorySegment dst = arena.allocate(n + 16);
      m.copy(src, 3, dst, 7, n, false, WaitStrategy.spin());
      assertEquals(-1, src.asSlice(3, n).mismatch(dst.asSlice(7, n)), "size " + n);
      assertEquals(0, dst.get(ValueLayout.JAVA_BYTE, 6), "no write before the range");
    }
  }

  @ParameterizedTest
  @EnumSource(value = MoverKind.class, names = {"CPU", "SOFTWARE", "PARALLEL"})
  void asyncHandlesAreReusedAndReportBytes(MoverKind k) {
    DataMover m = mover(k);
    MemorySegment src = pattern(1 << 16, 1);
    MemorySegment dst = arena.allocate(1 << 16);
    Completion first = null;
    for (int i = 0; i < 3 * m.maxInFlight(); i++) {
      Completion c = m.submit(CopyRequest.of(src, dst).cacheInjection(i % 2 == 0));
      if (first == null) {
        first = c;
      }
      c.await(WaitStrategy.park());
      assertTrue(c.isSuccess());
      assertEquals(1 << 16, c.bytesCompleted());
      assertEquals(Idxd.COMP_SUCCESS, c.status());
      c.release();
      assertThrows(IllegalStateException.class, c::release, "double release");
    }
    assertEquals(-1, src.mismatch(dst));
  }

  @ParameterizedTest
  @EnumSource(value = MoverKind.class, names = {"CPU", "SOFTWARE", "PARALLEL"})
  void batchCompletesAllCopies(MoverKind k) {
    DataMover m = mover(k);
    Batch b = new Batch(8);
    MemorySegment src = pattern(8 * 5000, 2);
    MemorySegment dst = arena.allocate(8 * 5000);
    for (int i = 0; i < 8; i++) {
      b.add(src, i * 5000L, dst, (7 - i) * 5000L, 5000);
    }
    assertThrows(IllegalStateException.class, () -> b.add(src, 0, dst, 0, 1), "full batch");
    Completion c = m.submit(b);
    c.join(WaitStrategy.hybrid());
    assertEquals(8, c.copies());
    assertEquals(40_000, c.bytesCompleted());
    c.release();
    for (int i = 0; i < 8; i++) {
      assertEquals(-1, src.asSlice(i * 5000L, 5000).mismatch(dst.asSlice((7 - i) * 5000L, 5000)));
    }
    assertThrows(IllegalArgumentException.class, () -> m.submit(b.clear()));
  }

  @ParameterizedTest
  @EnumSource(value = MoverKind.class, names = {"CPU", "SOFTWARE", "PARALLEL"})
  void sessionsInAllModes(MoverKind k) {
    for (Mode mode : Mode.values()) {
      MemorySegment src = pattern(100 * 4096, mode.ordinal());
      MemorySegment dst = arena.allocate(100 * 4096);
      try (MoverSession s = mover(k).session(mode, WaitStrategy.hybrid())) {
        for (int i = 0; i < 100; i++) {
          s.copy(src, i * 4096L, dst, i * 4096L, 4096, i % 10 == 0);
          s.poll();
        }
        if (mode == Mode.PIPELINED && k == MoverKind.SOFTWARE) {
          assertTrue(s.batched() > 0 || s.inFlight() > 0);
        }
        s.drain();
        assertEquals(100, s.completedCopies(), mode.toString());
        assertEquals(0, s.inFlight());
      }
      assertEquals(-1, src.mismatch(dst), mode.toString());
    }
  }

  @ParameterizedTest
  @EnumSource(value = MoverKind.class, names = {"CPU", "SOFTWARE", "PARALLEL"})
  void badInputIsAClearException(MoverKind k) {
    DataMover m = mover(k);
    MemorySegment a = arena.allocate(4096);
    MemorySegment b = arena.allocate(1024);
    WaitStrategy w = WaitStrategy.spin();
    assertThrows(NullPointerException.class, () -> m.copy(null, 0, a, 0, 1, false, w));
    assertThrows(NullPointerException.class, () -> m.copy(a, 0, null, 0, 1, false, w));
    assertThrows(IndexOutOfBoundsException.class, () -> m.copy(a, 0, b, 0, 2048, false, w),
        "too-small destination");
    assertThrows(IndexOutOfBoundsException.class, () -> m.copy(a, 4000, b, 0, 100, false, w),
        "beyond the source");
    assertThrows(IndexOutOfBoundsException.class, () -> m.copy(a, -1, b, 0, 10, false, w));
    assertThrows(IllegalArgumentException.class, () -> m.copy(a, 0, b, 0, -1, false, w));
    assertThrows(IllegalArgumentException.class, () -> m.copy(a, 0, a, 100, 200, false, w),
        "overlap");
    assertThrows(IllegalArgumentException.class,
        () -> m.copy(a, 0, MemorySegment.ofArray(new byte[16]), 0, 16, false, w), "heap");
    assertThrows(IllegalArgumentException.class,
        () -> m.copy(a, 0, b.asReadOnly(), 0, 16, false, w), "read-only");
    Arena gone = Arena.ofConfined();
    MemorySegment closed = gone.allocate(64);
    gone.close();
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> m.copy(closed, 0, b, 0, 16, false, w));
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    m.copy(a, 0, a, 2048, 2048, false, w); // adjacent, not overlapping: fine
    assertEquals(0, b.get(ValueLayout.JAVA_BYTE, 0), "nothing written by rejected copies");
  }

  @Test
  void handlePoolExhaustionAndPendingRelease() {
    DataMover m = mover(MoverKind.SOFTWARE);
    MemorySegment src = pattern(4096, 3);
    MemorySegment dst = arena.allocate(4096);
    faults.pauseWorkers(true);
    Completion c = m.submit(CopyRequest.of(src, dst));
    try {
      assertFalse(c.isDone());
      assertThrows(IllegalStateException.class, c::release, "release while in flight");
    } finally {
      faults.pauseWorkers(false);
    }
    c.join(WaitStrategy.spin());
    c.release();
    DataMover cpu = mover(MoverKind.CPU);
    Completion[] held = new Completion[cpu.maxInFlight()];
    for (int i = 0; i < held.length; i++) {
      held[i] = cpu.submit(CopyRequest.of(src, dst));
    }
    assertThrows(IllegalStateException.class, () -> cpu.submit(CopyRequest.of(src, dst)));
    assertNull(cpu.trySubmit(CopyRequest.of(src, dst)));
    for (Completion h : held) {
      h.release();
    }
  }

  @Test
  void pageFaultIsResumedFromBytesCompleted() {
    DataMover m = mover(MoverKind.SOFTWARE);
    MemorySegment src = pattern(1 << 20, 4);
    MemorySegment dst = arena.allocate(1 << 20);
    long before = engine().executed();
    faults.pageFaultNext(300_000, true);
    m.copy(src, 0, dst, 0, 1 << 20, false, WaitStrategy.spin());
    assertEquals(-1, src.mismatch(dst));
    assertEquals(2, engine().executed() - before, "one partial descriptor + one resume");
  }

  @Test
  void pageFaultInsideABatchIsRepaired() {
    DataMover m = mover(MoverKind.SOFTWARE);
    MemorySegment src = pattern(4 * 65536, 5);
    MemorySegment dst = arena.allocate(4 * 65536);
    Batch b = new Batch(4);
    for (int i = 0; i < 4; i++) {
      b.add(src, i * 65536L, dst, i * 65536L, 65536);
    }
    faults.pageFaultNext(1000, false);
    Completion c = m.submit(b);
    c.join(WaitStrategy.spin());
    c.release();
    assertEquals(-1, src.mismatch(dst));
  }

  @Test
  void engineErrorBecomesCopyFailedException() {
    DataMover m = mover(MoverKind.SOFTWARE);
    MemorySegment src = pattern(4096, 6);
    MemorySegment dst = arena.allocate(4096);
    faults.badOpcodeNext(1);
    CopyFailedException e = assertThrows(CopyFailedException.class,
        () -> m.copy(src, 0, dst, 0, 4096, false, WaitStrategy.spin()));
    assertEquals(Idxd.COMP_BAD_OPCODE, e.status());
    assertTrue(e.getMessage().contains("BAD_OPCODE"), e.getMessage());
    // the handle went back to the pool and the mover still works
    m.copy(src, 0, dst, 0, 4096, false, WaitStrategy.spin());
    assertEquals(-1, src.mismatch(dst));
  }

  @Test
  void queueFullIsBackpressure() {
    DataMover m = mover(MoverKind.SOFTWARE);
    MemorySegment src = pattern(4096, 7);
    MemorySegment dst = arena.allocate(4096);
    faults.queueFullNext(1);
    assertNull(m.trySubmit(CopyRequest.of(src, dst)), "full queue: try later");
    faults.queueFullNext(3);
    Completion c = m.submit(CopyRequest.of(src, dst)); // retries until accepted
    c.join(WaitStrategy.spin());
    c.release();
    assertEquals(-1, src.mismatch(dst));
  }

  /** A portal around the software engine with a tiny max transfer size and no batches. */
  static final class NarrowPortal implements Portal {
    final SoftwarePortal inner = new SoftwarePortal(new SoftwareCopyEngine(1, 16, 1 << 20));
    final AtomicInteger submitted = new AtomicInteger();
    final AtomicInteger batchesRefused = new AtomicInteger();

    @Override
    public int submit(MemorySegment desc) {
      if (desc.get(ValueLayout.JAVA_BYTE, Idxd.DESC_OPCODE) == Idxd.OP_BATCH) {
        batchesRefused.incrementAndGet();
        return BATCH_UNSUPPORTED; // like EINVAL from a kernel that forbids user batches
      }
      submitted.incrementAndGet();
      return inner.submit(desc);
    }

    @Override
    public long maxTransferSize() { return 16 << 10; }

    @Override
    public int maxBatchSize() { return 8; }

    @Override
    public boolean cacheControl() { return false; }

    @Override
    public int maxInFlight() { return 4; }

    @Override
    public String describe() { return "narrow test portal"; }

    @Override
    public void close() { inner.close(); }
  }

  @Test
  void splitsAtMaxTransferSizeAndFallsBackWhenBatchesAreRefused() {
    NarrowPortal p = new NarrowPortal();
    try (DescriptorMover m = new DescriptorMover(MoverKind.SOFTWARE, p, 64)) {
      assertEquals(4, m.maxInFlight(), "never more in flight than the queue holds");
      MemorySegment src = pattern(100_000, 8);
      MemorySegment dst = arena.allocate(100_000);
      m.copy(src, 0, dst, 0, 100_000, true, WaitStrategy.spin());
      assertEquals(-1, src.mismatch(dst));
      assertEquals(7, p.submitted.get(), "ceil(100000 / 16 KiB) descriptors");
      Batch b = new Batch(3);
      MemorySegment dst2 = arena.allocate(3 * 20_000);
      for (int i = 0; i < 3; i++) {
        b.add(src, i * 20_000L, dst2, i * 20_000L, 20_000);
      }
      Completion c = m.submit(b);
      c.join(WaitStrategy.spin());
      c.release();
      assertEquals(-1, src.asSlice(0, 60_000).mismatch(dst2));
      assertEquals(0, p.batchesRefused.get(), "sub-copy > max transfer: never tried as batch");
      Batch small = new Batch(2).add(src, 0, dst2, 0, 100).add(src, 100, dst2, 100, 100);
      c = m.submit(small);
      c.join(WaitStrategy.spin());
      c.release();
      assertEquals(1, p.batchesRefused.get());
      c = m.submit(small);
      c.join(WaitStrategy.spin());
      c.release();
      assertEquals(1, p.batchesRefused.get(), "remembered: no second refused batch");
    }
  }

  @Test
  void closedMoverRefusesWork() {
    MoverRegistry r = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false)
        .dsa(false).softwareWorkers(1));
    try {
      List<DataMover> all = r.movers();
      MemorySegment src = pattern(64, 1);
      MemorySegment dst = arena.allocate(64);
      r.close();
      for (DataMover m : all) {
        IllegalStateException e = assertThrows(IllegalStateException.class,
            () -> m.copy(src, 0, dst, 0, 64, false, WaitStrategy.spin()), m.kind().toString());
        assertFalse(e.getMessage().isEmpty());
      }
    } finally {
      r.close(); // idempotent
    }
  }
}
