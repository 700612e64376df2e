package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Copies on the calling thread and {@code threads - 1} helper threads, each taking an equal
 * share cut on cache-line boundaries (so no two threads write the same line); the completion is
 * done on return from submit. One core does not saturate memory bandwidth on every host; the
 * hand-off to a helper costs a wake-up, so small copies are slower than on the caller alone.
 * Segments confined to the calling thread are copied by the caller alone.
 */
final class ParallelCpuMover extends CallerCopyMover {
  private final int threads;
  private final ThreadPoolExecutor helpers;
  /** A helper thread: segments it cannot access (confined to the caller) are copied alone. */
  private final Thread aHelper;

  ParallelCpuMover(int threads) {
    super(MoverKind.PARALLEL);
    if (threads < 2) {
      throw new IllegalArgumentException("a parallel copy needs at least 2 threads: " + threads);
    }
    this.threads = threads;
    List<Thread> started = new ArrayList<>();
    ThreadFactory named = Thread.ofPlatform().daemon().name("dsa-parallel-copy-", 0).factory();
    this.helpers = new ThreadPoolExecutor(threads - 1, threads - 1, 0, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), r -> {
          Thread t = named.newThread(r);
          started.add(t);
          return t;
        });
    helpers.prestartAllCoreThreads();
    this.aHelper = started.get(0);
  }

  @Override
  public String description() {
    return "copy split over the calling thread and " + (threads - 1) + " helper thread"
        + (threads == 2 ? "" : "s");
  }

  /** Threads sharing each copy, the caller included. */
  int threads() { return threads; }

  @Override
  void copy(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length) {
    long share = (length / threads) & ~63L;
    if (share == 0 || !src.isAccessibleBy(aHelper) || !dst.isAccessibleBy(aHelper)) {
      MemorySegment.copy(src, srcOffset, dst, dstOffset, length);
      return;
    }
    List<Future<?>> parts = new ArrayList<>(threads - 1);
    for (int t = 1; t < threads; t++) {
      long from = t * share;
      long n = t == threads - 1 ? length - from : share;
      parts.add(helpers.submit(() -> MemorySegment.copy(src, srcOffset + from, dst,
          dstOffset + from, n)));
    }
    MemorySegment.copy(src, srcOffset, dst, dstOffset, share);
    RuntimeException failure = null;
    boolean interrupted = false;
    for (Future<?> f : parts) {
      for (;;) {
        try {
          f.get();
          break;
        } catch (InterruptedException e) {
          interrupted = true; // the helpers still write into dst: wait for them regardless
        } catch (ExecutionException e) {
          failure = e.getCause() instanceof RuntimeException r ? r
              : new IllegalStateException(e.getCause());
          break;
        }
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    if (failure != null) {
      throw failure;
    }
  }

  @Override
  void doClose() {
    helpers.shutdown();
  }
}
