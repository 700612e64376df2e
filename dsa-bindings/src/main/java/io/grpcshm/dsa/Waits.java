package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.TimerSlack;
import java.util.concurrent.locks.LockSupport;

/** The stock {@link WaitStrategy} implementations. */
final class Waits {
  private Waits() {}

  /** Spins before falling back to yields: a stuck copy must not starve a 2-core box. */
  private static final int SPINS_BEFORE_YIELD = 20_000;

  static final class Spin implements WaitStrategy {
    static final Spin INSTANCE = new Spin();

    @Override
    public String name() { return "spin"; }

    @Override
    public void await(Completion c) {
      int spins = 0;
      while (!c.isDone()) {
        if (++spins < SPINS_BEFORE_YIELD) {
          Thread.onSpinWait();
        } else {
          Thread.yield();
        }
      }
    }
  }

  static final class Park implements WaitStrategy {
    private final long intervalNanos;
    private final String name;

    Park(long intervalNanos) {
      if (intervalNanos <= 0) {
        throw new IllegalArgumentException("poll interval must be > 0");
      }
      this.intervalNanos = intervalNanos;
      this.name = "park(" + intervalNanos / 1000 + "us)";
    }

    @Override
    public String name() { return name; }

    @Override
    public void await(Completion c) {
      while (!c.isDone()) {
        LockSupport.parkNanos(intervalNanos);
      }
    }
  }

  static final class Hybrid implements WaitStrategy {
    /** Below this a sleep costs more (syscall, wake-up) than it saves. */
    static final long MIN_SLEEP_NANOS = 5_000;
    /** Poll interval once the prediction has passed by more than it (prediction too low). */
    static final long LATE_PARK_NANOS = 10_000;
    private final double fraction;
    private final String name;

    Hybrid(double fraction) {
      if (!(fraction >= 0 && fraction <= 1)) {
        throw new IllegalArgumentException("fraction must be in [0, 1]: " + fraction);
      }
      this.fraction = fraction;
      this.name = "hybrid(" + fraction + ")";
    }

    @Override
    public String name() { return name; }

    /** Sleep time for a copy with this prediction, submitted {@code elapsed} ns ago. */
    long sleepNanos(long predicted, long elapsed) {
      long s = (long) (fraction * predicted) - elapsed;
      return s >= MIN_SLEEP_NANOS ? s : 0;
    }

    @Override
    public void await(Completion c) {
      if (c.isDone()) {
        return;
      }
      long predicted = c.predictedNanos();
      long start = c.submittedAtNanos();
      long sleep = sleepNanos(predicted, System.nanoTime() - start);
      if (sleep > 0) {
        TimerSlack.ensureLowered();
        long deadline = start + (long) (fraction * predicted);
        do {
          LockSupport.parkNanos(sleep); // may return early; loop to the deadline
          sleep = deadline - System.nanoTime();
        } while (sleep >= MIN_SLEEP_NANOS && !c.isDone());
      }
      int spins = 0;
      while (!c.isDone()) {
        if (++spins < SPINS_BEFORE_YIELD) {
          Thread.onSpinWait();
        } else {
          TimerSlack.ensureLowered();
          LockSupport.parkNanos(LATE_PARK_NANOS);
        }
      }
    }
  }
}
