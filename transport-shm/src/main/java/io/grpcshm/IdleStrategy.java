package io.grpcshm;

import java.time.Duration;

/**
 * How a connection's reader thread waits for the next frame: spin briefly, then yield, then sleep
 * on a futex until the peer wakes it. The peer only pays for a wake-up system call when this side
 * announced that it sleeps, so a busy connection never enters the kernel.
 *
 * <p>Spinning buys microseconds of latency with CPU time: on a host with few cores, keep it short.
 */
public final class IdleStrategy {
  private final long spinNanos;
  private final long yieldNanos;
  private final long sleepTimeoutNanos;

  private IdleStrategy(long spinNanos, long yieldNanos, long sleepTimeoutNanos) {
    if (spinNanos < 0 || yieldNanos < 0 || sleepTimeoutNanos <= 0) {
      throw new IllegalArgumentException("idle strategy durations must be non-negative");
    }
    this.spinNanos = spinNanos;
    this.yieldNanos = yieldNanos;
    this.sleepTimeoutNanos = sleepTimeoutNanos;
  }

  /** The default: spin 20 µs, yield up to 200 µs, then sleep on the futex. */
  public static IdleStrategy adaptive() {
    return new IdleStrategy(20_000, 200_000, 100_000_000);
  }

  /** Never sleeps: lowest latency, one core per connection side while idle. */
  public static IdleStrategy busySpin() {
    return new IdleStrategy(Long.MAX_VALUE / 4, 0, 100_000_000);
  }

  /** Sleeps at once: least CPU, a futex wake-up (tens of µs on a VM) per message. */
  public static IdleStrategy sleeping() {
    return new IdleStrategy(0, 0, 100_000_000);
  }

  /** Spin for {@code spin}, then yield for {@code yield}, then sleep on the futex. */
  public static IdleStrategy of(Duration spin, Duration yield) {
    return new IdleStrategy(spin.toNanos(), yield.toNanos(), 100_000_000);
  }

  public long spinNanos() {
    return spinNanos;
  }

  public long yieldNanos() {
    return yieldNanos;
  }

  /** Longest single futex sleep; the reader re-checks its state after each one. */
  public long sleepTimeoutNanos() {
    return sleepTimeoutNanos;
  }

  @Override
  public String toString() {
    return "IdleStrategy{spin=" + spinNanos + "ns, yield=" + yieldNanos + "ns}";
  }
}
