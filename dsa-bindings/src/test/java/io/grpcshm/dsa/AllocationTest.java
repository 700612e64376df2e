package io.grpcshm.dsa;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The hot path (submit, poll, release) must not allocate per copy. */
class AllocationTest {
  @ParameterizedTest
  @EnumSource(value = MoverKind.class, names = {"CPU", "SOFTWARE"})
  void syncAndBatchCopiesDoNotAllocate(MoverKind kind) {
    com.sun.management.ThreadMXBean mx =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long tid = Thread.currentThread().threadId();
    try (MoverRegistry r = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false)
        .dsa(false).softwareWorkers(1)); Arena a = Arena.ofConfined()) {
      DataMover m = r.get(kind);
      MemorySegment src = a.allocate(8192);
      MemorySegment dst = a.allocate(8192);
      CopyRequest req = new CopyRequest().set(src, 0, dst, 0, 4096);
      Batch b = new Batch(4);
      WaitStrategy spin = WaitStrategy.spin();
      int n = 20_000;
      for (int i = 0; i < n; i++) { // warm up so the JIT has compiled (and scalar-replaced)
        work(m, req, b, src, dst, spin);
      }
      long before = mx.getThreadAllocatedBytes(tid);
      for (int i = 0; i < n; i++) {
        work(m, req, b, src, dst, spin);
      }
      long perOp = (mx.getThreadAllocatedBytes(tid) - before) / n;
      assertTrue(perOp < 8, kind + " allocated " + perOp + " B per copy+batch");
    }
  }

  private static void work(DataMover m, CopyRequest req, Batch b, MemorySegment src,
      MemorySegment dst, WaitStrategy spin) {
    m.copy(req, spin);
    b.clear().add(src, 0, dst, 0, 2048).add(src, 2048, dst, 2048, 2048);
    Completion c = m.submit(b);
    c.join(spin);
    c.release();
  }
}
