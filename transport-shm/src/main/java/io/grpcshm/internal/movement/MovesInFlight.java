package io.grpcshm.internal.movement;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Bulk moves in progress in this process (decided and not yet finished): the policy's
 * concurrency signal. It counts what the profiler's {@code clients} count, threads copying at
 * the same time, so a model reads the same thing at run time as in training. A move counts
 * itself, so a lone move sees 1, as a profiled workload with one client does.
 */
public final class MovesInFlight {
  private MovesInFlight() {}

  private static final AtomicInteger COUNT = new AtomicInteger();

  public static int count() {
    return COUNT.get();
  }

  static void begin() {
    COUNT.incrementAndGet();
  }

  static void end() {
    COUNT.decrementAndGet();
  }
}
