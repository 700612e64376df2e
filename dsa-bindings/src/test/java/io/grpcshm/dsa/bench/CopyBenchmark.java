package io.grpcshm.dsa.bench;

import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;

/**
 * Sync copy latency per mover and size (throughput = size / time), on reused pre-faulted
 * buffers versus a fresh destination per copy (allocation, zeroing and page faults included:
 * what a transport pays when it does not reuse buffers). Movers missing on the host are skipped
 * with a message, never faked.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class CopyBenchmark {
  @Param({"CPU", "SOFTWARE", "DSA"})
  public String mover;

  @Param({"4096", "65536", "1048576", "16777216", "268435456"})
  public long size;

  @Param({"reused", "fresh"})
  public String buffers;

  private MoverRegistry registry;
  private DataMover m;
  private Arena arena;
  private MemorySegment src;
  private MemorySegment dst;
  private final WaitStrategy spin = WaitStrategy.spin();

  @Setup(Level.Trial)
  public void setUp() {
    registry = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false));
    m = registry.get(MoverKind.valueOf(mover));
    if (!m.isAvailable()) {
      registry.close();
      throw new IllegalStateException("skipped: " + mover + " unavailable: "
          + m.unavailableReason());
    }
    arena = Arena.ofShared();
    src = arena.allocate(size, 4096);
    src.fill((byte) 1);
    if (buffers.equals("reused")) {
      dst = arena.allocate(size, 4096);
      dst.fill((byte) 2);
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    if (arena != null) {
      arena.close();
    }
    registry.close();
  }

  @Benchmark
  public void copy() {
    if (dst != null) {
      m.copy(src, 0, dst, 0, size, false, spin);
      return;
    }
    try (Arena a = Arena.ofShared()) {
      MemorySegment fresh = a.allocate(size, 4096);
      m.copy(src, 0, fresh, 0, size, false, spin);
    }
  }
}
