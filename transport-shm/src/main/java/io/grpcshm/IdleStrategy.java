package io.grpcshm;

import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.Objects;

/**
 * How an event loop waits for the next frame: spin (if asked to), then yield, then sleep in epoll
 * until a peer wakes it (a WAKE message). A peer only pays for a wake-up system call when this side
 * announced that it sleeps, so a busy connection never enters the kernel.
 *
 * <p>This is the setting; each loop applies it with its own idle state (Agrona's {@code
 * idle(workCount)} shape, in the transport's internals). Connections with equal strategies share
 * loops. Spinning buys microseconds of latency with CPU time: on a host with few cores, keep it
 * short.
 */
public final class IdleStrategy {
  /**
   * Spin this long without work before yielding (adaptive default): not at all. A spinning loop
   * holds its core while the thread a call needs next (grpc's executor, a blocked caller just
   * woken) waits for one; a yielding loop hands the core over at once and still sees the next
   * frame within a system call's time. On a 2-vCPU host, 20 µs of spin made a 100 B call's p50
   * 78-85 µs against 52-71 µs without (docs/BENCHMARKS.md, "The bidi echo's queue, and the idle
   * strategy measured again").
   */
  private static final Duration DEFAULT_SPIN = Duration.ZERO;
  /** Then yield this long before sleeping (adaptive default). */
  private static final Duration DEFAULT_YIELD = Duration.of(200, ChronoUnit.MICROS);
  /** A spin long enough never to end: a loop that never sleeps. */
  private static final long FOREVER_NANOS = Long.MAX_VALUE / 4;
  private static final String PROPERTY = "io.grpcshm.idle";

  private final long spinNanos;
  private final long yieldNanos;

  private IdleStrategy(long spinNanos, long yieldNanos) {
    if (spinNanos < 0 || yieldNanos < 0) {
      throw new IllegalArgumentException("idle strategy durations must be non-negative");
    }
    this.spinNanos = spinNanos;
    this.yieldNanos = yieldNanos;
  }

  /** Yield up to 200 µs without spinning first, then sleep. */
  public static IdleStrategy adaptive() {
    return of(DEFAULT_SPIN, DEFAULT_YIELD);
  }

  /**
   * What connections use unless their builder says otherwise: {@link #adaptive()}, or
   * {@code -Dio.grpcshm.idle=SPIN_US,YIELD_US} (e.g. {@code 0,0} to sleep at once) for hosts and
   * benchmarks that want another trade-off without code changes.
   */
  public static IdleStrategy defaults() {
    String spec = System.getProperty(PROPERTY);
    if (spec == null || spec.isBlank()) {
      return adaptive();
    }
    String[] parts = spec.split(",");
    if (parts.length != 2) {
      throw new IllegalArgumentException(PROPERTY + " must be SPIN_US,YIELD_US: " + spec);
    }
    return of(Duration.of(Long.parseLong(parts[0].trim()), ChronoUnit.MICROS),
        Duration.of(Long.parseLong(parts[1].trim()), ChronoUnit.MICROS));
  }

  /** Never sleeps: lowest latency, one core per loop while idle. */
  public static IdleStrategy busySpin() {
    return new IdleStrategy(FOREVER_NANOS, 0);
  }

  /** Sleeps at once: least CPU while idle, a wake-up (tens of µs on a VM) per message. */
  public static IdleStrategy sleeping() {
    return new IdleStrategy(0, 0);
  }

  /**
   * {@code strategy} without its yield phase: what a connection whose two ends are in one
   * process uses. One event loop then serves both ends, and while it stays awake after its work
   * the threads a call needs next (grpc's executor, the blocked caller) wait for a core: on two
   * vCPUs a 100 B call took 510 µs with 20 µs spin + 200 µs yield (the default then), 150 µs
   * with the spin alone and 117-150 µs sleeping at once, which is what the default becomes here
   * (docs/BENCHMARKS.md, "One process, both ends").
   */
  public static IdleStrategy withoutYield(IdleStrategy strategy) {
    return strategy.yieldNanos == 0 ? strategy : new IdleStrategy(strategy.spinNanos, 0);
  }

  /** Spin for {@code spin}, then yield for {@code yield}, then sleep. */
  public static IdleStrategy of(Duration spin, Duration yield) {
    return new IdleStrategy(spin.toNanos(), yield.toNanos());
  }

  public long spinNanos() {
    return spinNanos;
  }

  public long yieldNanos() {
    return yieldNanos;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof IdleStrategy other && spinNanos == other.spinNanos
        && yieldNanos == other.yieldNanos;
  }

  @Override
  public int hashCode() {
    return Objects.hash(spinNanos, yieldNanos);
  }

  @Override
  public String toString() {
    return "IdleStrategy{spin=" + spinNanos + "ns, yield=" + yieldNanos + "ns}";
  }
}
