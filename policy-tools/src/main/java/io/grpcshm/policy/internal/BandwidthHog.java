package io.grpcshm.policy.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Co-running memory-bandwidth hogs: threads that stream-copy between two large native buffers
 * until closed, to induce LLC/memory pressure. {@link #close()} stops and joins every thread and
 * frees the memory (tests rely on it).
 */
public final class BandwidthHog implements AutoCloseable {
  private static final long CHUNK = 4L << 20;

  private final List<Thread> threads = new ArrayList<>();
  private final Arena arena = Arena.ofShared();
  private volatile boolean stop;

  public BandwidthHog(int threadCount, long bytesPerThread) {
    for (int t = 0; t < threadCount; t++) {
      MemorySegment a = arena.allocate(bytesPerThread, 64);
      MemorySegment b = arena.allocate(bytesPerThread, 64);
      a.fill((byte) 1);
      b.fill((byte) 2);
      Thread th = Thread.ofPlatform().daemon().name("policy-bandwidth-hog-" + t).unstarted(() -> {
        long n = bytesPerThread;
        while (!stop) {
          for (long off = 0; off + CHUNK <= n && !stop; off += CHUNK) {
            MemorySegment.copy(a, off, b, off, CHUNK);
          }
        }
      });
      threads.add(th);
    }
    threads.forEach(Thread::start);
  }

  public int threads() { return threads.size(); }

  @Override
  public void close() {
    stop = true;
    boolean interrupted = Threads.joinAll(threads);
    arena.close();
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
