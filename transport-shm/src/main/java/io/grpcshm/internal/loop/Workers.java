package io.grpcshm.internal.loop;

import java.util.concurrent.Executor;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Threads for the transport's blocking chores, for the whole process: handshakes (both sides) and
 * the teardowns that must wait for data movers. Reused (a new thread per connection cost about as
 * much as the rest of the handshake), at most {@link #MAX_THREADS} at once, idle ones ending after
 * a few seconds. Never the event loops' work: those must not block.
 */
public final class Workers {
  /** Concurrent chores per process; a server additionally limits its handshakes (32). */
  public static final int MAX_THREADS = 64;
  private static final long KEEP_ALIVE_SECONDS = 2;
  private static final AtomicInteger IDS = new AtomicInteger();

  private static final ThreadPoolExecutor POOL = new ThreadPoolExecutor(0, MAX_THREADS,
      KEEP_ALIVE_SECONDS, TimeUnit.SECONDS, new SynchronousQueue<>(), r -> {
        Thread t = new Thread(r, "grpc-shm-worker-" + IDS.incrementAndGet());
        t.setDaemon(true);
        return t;
      }, new ThreadPoolExecutor.CallerRunsPolicy());

  private Workers() {}

  /**
   * Runs a chore on a pooled thread; if all {@link #MAX_THREADS} are busy, on the calling thread
   * (a client's channel executor, or the server's acceptor, which then accepts no one else
   * meanwhile: back-pressure).
   */
  public static Executor get() {
    return POOL;
  }
}
