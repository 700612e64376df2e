package io.grpcshm.internal.movement;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The CPU's copy into shared memory for large payloads, on two threads: the caller copies the
 * first half while one shared helper thread copies the second. A single core does not saturate
 * memory bandwidth; on this project's 2-vCPU machines 16 MiB took 1.2–1.4 ms on one thread and
 * 0.75–1.0 ms on two. Used for heap payloads written by grpc's framer and for off-heap payloads
 * the CPU copies outside the policy (another mover failed, or the movers are still being
 * opened). The policy's own choices are the CPU candidate (one thread) and dsa-bindings'
 * PARALLEL mover, the candidates it was profiled with.
 */
public final class ParallelCopy {
  private ParallelCopy() {}

  /** Below this a second thread costs more (hand-off, cache traffic) than it saves. */
  static final int THRESHOLD = 4 << 20;
  private static final boolean ENABLED = Runtime.getRuntime().availableProcessors() >= 2
      && !Boolean.getBoolean("io.grpcshm.parallelCopy.disabled");

  private static final class Holder {
    static final ExecutorService HELPER = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "grpc-shm-copy");
      t.setDaemon(true);
      return t;
    });
  }

  /** Copies a heap array range into {@code dst} at {@code dstOffset}. */
  public static void copy(byte[] src, int srcIndex, MemorySegment dst, long dstOffset,
      int length) {
    copy(MemorySegment.ofArray(src), srcIndex, dst, dstOffset, length);
  }

  /** Copies {@code length} bytes of {@code src} from {@code srcOffset} into {@code dst}. */
  public static void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
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
