package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The CPU's copy for copies no policy chose (a transport's fallback after another mover failed,
 * or its copies while the movers are still being opened): from 4 MiB on, the caller copies the
 * first half while one shared helper thread copies the second. A single core does not saturate
 * memory bandwidth; on this project's 2-vCPU machines 16 MiB took 1.2–1.4 ms on one thread and
 * 0.75–1.0 ms on two. A {@link DataMover} of kind {@link MoverKind#CPU} whose completion is done
 * on return from submit.
 *
 * <p>A policy's candidates are the plain {@code CPU} mover (one thread) and {@code PARALLEL}
 * ({@link ParallelCpuMover}), the ones it was profiled with. Heap sources (which no mover
 * accepts) use the same routine through {@link #copy(byte[], int, MemorySegment, long, int)}.
 */
public final class ParallelCopy extends AbstractMover {
  /** Below this a second thread costs more (hand-off, cache traffic) than it saves. */
  static final int THRESHOLD = 4 << 20;
  private static final boolean ENABLED = Runtime.getRuntime().availableProcessors() >= 2
      && !Boolean.getBoolean("io.grpcshm.parallelCopy.disabled");

  private static final class Holder {
    static final ParallelCopy SHARED = new ParallelCopy();
    static final ExecutorService HELPER = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "grpc-shm-copy");
      t.setDaemon(true);
      return t;
    });
  }

  private ParallelCopy() {
    super(MoverKind.CPU, 64);
  }

  /** The process's instance (never closed: {@link #close()} would take it out of service). */
  public static ParallelCopy shared() {
    return Holder.SHARED;
  }

  @Override
  public String description() {
    return "copy on the calling thread, from " + (THRESHOLD >> 20) + " MiB split with one helper"
        + " thread" + (ENABLED ? "" : " (split disabled)");
  }

  @Override
  public long maxTransferSize() { return Long.MAX_VALUE; }

  @Override
  public int maxBatchSize() { return 1024; }

  @Override
  int start(Completion c, MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection) {
    copy(src, srcOffset, dst, dstOffset, length);
    c.succeed();
    return ACCEPTED;
  }

  @Override
  int startBatch(Completion c, Batch b) {
    for (int i = 0; i < b.size; i++) {
      copy(b.srcs[i], b.srcOffsets[i], b.dsts[i], b.dstOffsets[i], b.lengths[i]);
    }
    c.succeed();
    return ACCEPTED;
  }

  @Override
  void poll(Completion c) {
    throw new IllegalStateException("CPU completions are never pending");
  }

  @Override
  void doClose() {}

  /** A fallback copy must never fail for want of a handle, however many threads copy. */
  @Override
  boolean handlesOnDemand() { return true; }

  /** Copies a heap array range into {@code dst} at {@code dstOffset}. */
  public static void copy(byte[] src, int srcIndex, MemorySegment dst, long dstOffset,
      int length) {
    copy(MemorySegment.ofArray(src), srcIndex, dst, dstOffset, length);
  }

  private static void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length) {
    if (!ENABLED || length < THRESHOLD) {
      MemorySegment.copy(src, ValueLayout.JAVA_BYTE, srcOffset, dst, ValueLayout.JAVA_BYTE,
          dstOffset, length);
      return;
    }
    // Split on a cache-line boundary so the two threads never write the same line.
    long first = (length / 2) & ~63L;
    CompletableFuture<Void> second = CompletableFuture.runAsync(() -> MemorySegment.copy(
        src, ValueLayout.JAVA_BYTE, srcOffset + first, dst, ValueLayout.JAVA_BYTE,
        dstOffset + first, length - first), Holder.HELPER);
    MemorySegment.copy(src, ValueLayout.JAVA_BYTE, srcOffset, dst, ValueLayout.JAVA_BYTE,
        dstOffset, first);
    second.join();
  }
}
