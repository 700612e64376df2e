package io.grpcshm.dsa.bench;

import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.MoverSession;
import io.grpcshm.dsa.WaitStrategy;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;

/** Throughput of 32 copies of 64 KiB per operation in each mode (sync, async, pipelined). */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class ModeBenchmark {
  static final int COPIES = 32;
  static final long SIZE = 64 << 10;

  @Param({"CPU", "SOFTWARE"})
  public String mover;

  @Param({"SYNC", "ASYNC", "PIPELINED"})
  public String mode;

  @Param({"spin"})
  public String waitStrategy;

  private MoverRegistry registry;
  private MoverSession session;
  private Arena arena;
  private MemorySegment src;
  private MemorySegment dst;

  @Setup(Level.Trial)
  public void setUp() {
    registry = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(
        waitStrategy.equals("hybrid")));
    DataMover m = registry.get(MoverKind.valueOf(mover));
    session = m.session(io.grpcshm.dsa.Mode.valueOf(mode), WaitStrategy.byName(waitStrategy));
    arena = Arena.ofShared();
    src = arena.allocate(SIZE * COPIES, 4096);
    dst = arena.allocate(SIZE * COPIES, 4096);
    src.fill((byte) 1);
    dst.fill((byte) 2);
  }

  @TearDown(Level.Trial)
  public void tearDown() {
    session.close();
    arena.close();
    registry.close();
  }

  @Benchmark
  @OperationsPerInvocation(COPIES)
  public long copies() {
    for (int i = 0; i < COPIES; i++) {
      session.copy(src, i * SIZE, dst, i * SIZE, SIZE, false);
    }
    session.drain();
    return session.completedCopies();
  }
}
