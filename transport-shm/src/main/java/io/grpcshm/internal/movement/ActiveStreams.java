package io.grpcshm.internal.movement;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Shared-memory streams open in this process (idle ones included). Not the policy's concurrency
 * signal: that is {@link MovesInFlight}, which counts what the profiler counted.
 */
public final class ActiveStreams {
  private ActiveStreams() {}

  private static final AtomicInteger COUNT = new AtomicInteger();

  public static int count() {
    return COUNT.get();
  }

  public static void opened() {
    COUNT.incrementAndGet();
  }

  public static void closed() {
    COUNT.decrementAndGet();
  }
}
