package io.grpcshm.dsa;

import java.time.Duration;
import java.util.Locale;

/**
 * How a thread waits for a {@link Completion}: small, named and swappable. All strategies only
 * return once {@link Completion#isDone()} is true - which a descriptor mover makes sure happens:
 * a copy whose completion record does not come within the mover's bound fails.
 */
public interface WaitStrategy {
  /** Short name for reports ("spin", "park(50us)", "hybrid(0.95)"). */
  String name();

  void await(Completion c);

  /** Busy-poll with {@link Thread#onSpinWait()}: lowest latency, burns a core. */
  static WaitStrategy spin() { return Waits.Spin.INSTANCE; }

  /** Poll, then park 50 µs between polls (Rocket's "lazy poll"): cheap, adds latency. */
  static WaitStrategy park() { return new Waits.Park(50_000); }

  static WaitStrategy park(Duration pollInterval) {
    return new Waits.Park(pollInterval.toNanos());
  }

  /**
   * Sleep {@code 0.95 · L} where L is the mover's calibrated prediction for this copy
   * (L = L_fixed + α·size), then poll. Lowers the thread's timer slack on first use.
   */
  static WaitStrategy hybrid() { return new Waits.Hybrid(0.95); }

  static WaitStrategy hybrid(double fraction) { return new Waits.Hybrid(fraction); }

  /** "spin", "park" or "hybrid". */
  static WaitStrategy byName(String name) {
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "spin" -> spin();
      case "park" -> park();
      case "hybrid" -> hybrid();
      default -> throw new IllegalArgumentException("unknown wait strategy '" + name
          + "' (spin, park, hybrid)");
    };
  }
}
