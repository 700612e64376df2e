package io.grpcshm.dsa;

import java.util.Iterator;
import java.util.ServiceLoader;
import java.util.function.IntSupplier;

/**
 * Picks the data mover for one move, among the movers of a {@link MoverRegistry} it was made
 * for. A transport asks it for every large off-heap payload, on the sending thread: it must be
 * thread-safe, must not block and must not throw (a policy that cannot decide returns a CPU
 * choice and says why in {@link MoverChoice#reason()}).
 *
 * <p>The learned policy (module {@code policy}) implements it; {@link #forHost} finds it at run
 * time through {@link ServiceLoader} ({@link Provider}), else uses {@link #breakEven}.
 */
public interface MoverPolicy {
  /** The caller gave no hint of when the receiver reads the data again. */
  int REUSE_UNKNOWN = -1;

  /**
   * The mover for a move of {@code bytes} in {@code mode}.
   *
   * @param reuseWindow the application's hint of how soon the receiver reads the data again:
   *     0 (right after the copy), a distance in calls, or {@link #REUSE_UNKNOWN}
   */
  MoverChoice choose(long bytes, int reuseWindow, Mode mode);

  /**
   * What a move this policy chose cost, as the sender saw it (decision to completion, µs). For
   * policies that learn online; the default ignores it.
   */
  default void observe(MoverChoice choice, long bytes, int reuseWindow, Mode mode,
      double observedMicros) {}

  /**
   * What a copy of {@code bytes} by {@code mover} is expected to cost now, µs, for traces and
   * reports (a transport asks before the copy, and only when something records it); NaN when
   * this policy has no estimate, which is the default.
   */
  default double expectedCopyMicros(MoverKind mover, long bytes) {
    return Double.NaN;
  }

  /** One line for logs: which policy this is and what it decides with. */
  String describe();

  /** Makes the process's default policy; registered for {@link ServiceLoader}. */
  interface Provider {
    /**
     * @param movers the movers the policy chooses among (opened and calibrated)
     * @param movesInFlight moves in progress in the process, this one included: the
     *     concurrency signal (a cheap read, called on the request path)
     */
    MoverPolicy create(MoverRegistry movers, IntSupplier movesInFlight);
  }

  /**
   * The first {@link Provider} on the class path of {@code loader}, or {@link #breakEven} when
   * there is none (or it fails: the reason is in the returned policy's {@link #describe()}).
   */
  static MoverPolicy forHost(MoverRegistry movers, IntSupplier movesInFlight,
      ClassLoader loader) {
    Iterator<Provider> found = ServiceLoader.load(Provider.class, loader).iterator();
    String why;
    try {
      if (found.hasNext()) {
        return found.next().create(movers, movesInFlight);
      }
      why = "no MoverPolicy provider on the class path";
    } catch (RuntimeException | java.util.ServiceConfigurationError e) {
      why = "the MoverPolicy provider failed: " + e;
    }
    return new BreakEvenPolicy(movers, why);
  }

  /**
   * The built-in rule: the available mover with the lowest latency its calibration predicts
   * ({@code L_fixed + α·size}), so the CPU below every other mover's break-even size with it;
   * always the CPU when the CPU has no usable calibration. Movers without one never win.
   */
  static MoverPolicy breakEven(MoverRegistry movers) {
    return new BreakEvenPolicy(movers, "");
  }
}
