package io.grpcshm;

import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Waits for a condition that another thread or process makes true, for tests that must not assume
 * a busy machine schedules it promptly: polls every 5 ms up to a bound that only limits a failure.
 */
public final class Eventually {
  private Eventually() {}

  /** Whether {@code condition} holds within {@code seconds} (the caller asserts the result). */
  public static boolean holds(BooleanSupplier condition, long seconds)
      throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - until > 0) {
        return condition.getAsBoolean();
      }
      Thread.sleep(5);
    }
    return true;
  }
}
