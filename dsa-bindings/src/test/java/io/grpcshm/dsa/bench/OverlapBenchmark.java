package io.grpcshm.dsa.bench;

import io.grpcshm.dsa.Completion;
import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;
import org.openjdk.jmh.infra.Blackhole;

/**
 * The async benefit: the caller has {@code work} tokens of its own computation besides a copy.
 * CPU/sequential does copy-then-compute on one thread; the offloaded variants submit, compute
 * while the engine copies, then wait. With a software engine the overlap is paid for with a
 * second core (which a 2-core VM barely has).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class OverlapBenchmark {
  @Param({"4194304"})
  public long size;

  @Param({"100000"})
  public long work;

  private MoverRegistry registry;
  private DataMover cpu;
  private DataMover sw;
  private Arena arena;
  private MemorySegment src;
  private MemorySegment dst;
  private final WaitStrategy wait = WaitStrategy.spin();

  @Setup(Level.Trial)
  public void setUp() {
    registry = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false));
    cpu = registry.get(MoverKind.CPU);
    sw = registry.get(MoverKind.SOFTWARE);
    arena = Arena.ofShared();
    src = arena.allocate(size, 4096);
    dst = arena.allocate(size, 4096);
    src.fill((byte) 1);
    dst.fill((byte) 2);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    arena.close();
    registry.close();
  }

  @Benchmark
  public void computeOnly() {
    Blackhole.consumeCPU(work);
  }

  @Benchmark
  public void cpuCopyThenCompute() {
    cpu.copy(src, 0, dst, 0, size, false, wait);
    Blackhole.consumeCPU(work);
  }

  @Benchmark
  public void softwareAsyncOverlapped() {
    Completion c = sw.submit(src, 0, dst, 0, size, false);
    Blackhole.consumeCPU(work);
    c.join(wait);
    c.release();
  }
}
