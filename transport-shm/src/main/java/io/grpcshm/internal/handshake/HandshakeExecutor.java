package io.grpcshm.internal.handshake;

import java.util.concurrent.Executor;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The threads that run handshakes, both sides, for the whole process: reused (a new thread per
 * connection cost about as much as the rest of the handshake), at most {@link #MAX_THREADS} at
 * once (a further handshake waits for one to finish, in the caller's queue: the acceptor's
 * semaphore, or a client's pending start), idle ones ending after a few seconds.
 */
public final class HandshakeExecutor {
  /** Concurrent handshakes per process; the server additionally limits its own (32). */
  public static final int MAX_THREADS = 64;
  private static final long KEEP_ALIVE_SECONDS = 2;
  private static final AtomicInteger IDS = new AtomicInteger();

  private static final ThreadPoolExecutor POOL = new ThreadPoolExecutor(0, MAX_THREADS,
      KEEP_ALIVE_SECONDS, TimeUnit.SECONDS, new SynchronousQueue<>(), r -> {
        Thread t = new Thread(r, "grpc-shm-handshake-" + IDS.incrementAndGet());
        t.setDaemon(true);
        return t;
      }, new ThreadPoolExecutor.CallerRunsPolicy());

  private HandshakeExecutor() {}

  /**
   * Runs {@code handshake} on a pooled thread; if all {@link #MAX_THREADS} are busy, on the
   * calling thread (a client's channel executor, or the server's acceptor, which then accepts
   * no one else meanwhile: back-pressure).
   */
  public static Executor get() {
    return POOL;
  }
}
