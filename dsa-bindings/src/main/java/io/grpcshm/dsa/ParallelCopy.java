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
public final class ParallelCopy extends CallerCopyMover {
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
    super(MoverKind.CPU);
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
  void doClose() {}

  /** A fallback copy must never fail for want of a handle, however many threads copy. */
  @Override
  boolean handlesOnDemand() { return true; }

  /** Copies a heap array range into {@code dst} at {@code dstOffset}. */
  public static void copy(byte[] src, int srcIndex, MemorySegment dst, long dstOffset,
      int length) {
    split(MemorySegment.ofArray(src), srcIndex, dst, dstOffset, length);
  }

  @Override
  void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, long length) {
    split(src, srcOffset, dst, dstOffset, length);
  }

  private static void split(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
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
