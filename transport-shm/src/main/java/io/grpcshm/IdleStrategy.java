package io.grpcshm;

import java.time.Duration;

/**
 * How an event loop waits for the next frame: spin briefly, then yield, then sleep in epoll until
 * a peer wakes it (a WAKE message). A peer only pays for a wake-up system call when this side
 * announced that it sleeps, so a busy connection never enters the kernel. Connections with equal
 * strategies share loops.
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

  /** Spin 20 µs, yield up to 200 µs, then sleep. */
  public static IdleStrategy adaptive() {
    return new IdleStrategy(20_000, 200_000, 100_000_000);
  }

  /**
   * What connections use unless their builder says otherwise: {@link #adaptive()}, or
   * {@code -Dio.grpcshm.idle=SPIN_US,YIELD_US} (e.g. {@code 0,0} to sleep at once) for hosts and
   * benchmarks that want another trade-off without code changes.
   */
  public static IdleStrategy defaults() {
    String spec = System.getProperty("io.grpcshm.idle");
    if (spec == null || spec.isBlank()) {
      return adaptive();
    }
    String[] parts = spec.split(",");
    if (parts.length != 2) {
      throw new IllegalArgumentException("io.grpcshm.idle must be SPIN_US,YIELD_US: " + spec);
    }
    return new IdleStrategy(Long.parseLong(parts[0].trim()) * 1000,
        Long.parseLong(parts[1].trim()) * 1000, 100_000_000);
  }

  /** Never sleeps: lowest latency, one core per connection side while idle. */
  public static IdleStrategy busySpin() {
    return new IdleStrategy(Long.MAX_VALUE / 4, 0, 100_000_000);
  }

  /** Sleeps at once: least CPU while idle, a wake-up (tens of µs on a VM) per message. */
  public static IdleStrategy sleeping() {
    return new IdleStrategy(0, 0, 100_000_000);
  }

  /** Spin for {@code spin}, then yield for {@code yield}, then sleep. */
  public static IdleStrategy of(Duration spin, Duration yield) {
    return new IdleStrategy(spin.toNanos(), yield.toNanos(), 100_000_000);
  }

  public long spinNanos() {
    return spinNanos;
  }

  public long yieldNanos() {
    return yieldNanos;
  }

  /** Unused since event loops (kept for API compatibility); loops check parked rings once a second. */
  public long sleepTimeoutNanos() {
    return sleepTimeoutNanos;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof IdleStrategy other && spinNanos == other.spinNanos
        && yieldNanos == other.yieldNanos && sleepTimeoutNanos == other.sleepTimeoutNanos;
  }

  @Override
  public int hashCode() {
    return java.util.Objects.hash(spinNanos, yieldNanos, sleepTimeoutNanos);
  }

  @Override
  public String toString() {
    return "IdleStrategy{spin=" + spinNanos + "ns, yield=" + yieldNanos + "ns}";
  }
}
