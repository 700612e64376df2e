package io.grpcshm.dsa;

import java.util.Arrays;

/**
 * A mover's latency model on this host: L(size) = L_fixed + α·size, fitted at start-up from
 * median sync-copy latencies on reused (pre-faulted) buffers.
 *
 * @param fixedNanos L_fixed, ns
 * @param nanosPerByte α, ns per byte
 * @param sizes the calibration sizes, bytes
 * @param medianNanos median measured latency per size, ns
 * @param measured false for the placeholder used before (or without) calibration, and for the
 *     conservative defaults used when every measurement was rejected
 * @param note why the defaults are used instead of a measurement; empty when measured
 */
public record Calibration(long fixedNanos, double nanosPerByte, long[] sizes, long[] medianNanos,
    boolean measured, String note) {
  /** No prediction: the hybrid wait then simply polls. */
  public static final Calibration UNCALIBRATED =
      new Calibration(0, 0, new long[0], new long[0], false, "not calibrated");

  /**
   * Defaults when no measurement was plausible (a busy host at start-up): a fast copy (20 GB/s,
   * 2 µs fixed). Fast on purpose: a hybrid wait sleeps a fraction of the prediction, so an
   * optimistic one only makes it poll earlier, never oversleep a copy that already finished.
   */
  static final long FALLBACK_FIXED_NANOS = 2_000;
  static final double FALLBACK_NANOS_PER_BYTE = 0.05;

  public Calibration {
    sizes = sizes.clone();
    medianNanos = medianNanos.clone();
    note = note == null ? "" : note;
  }

  /** A measured calibration. */
  public Calibration(long fixedNanos, double nanosPerByte, long[] sizes, long[] medianNanos,
      boolean measured) {
    this(fixedNanos, nanosPerByte, sizes, medianNanos, measured, "");
  }

  /** The conservative defaults, carrying the reason every measurement was rejected. */
  public static Calibration fallback(String reason) {
    return new Calibration(FALLBACK_FIXED_NANOS, FALLBACK_NANOS_PER_BYTE, new long[0],
        new long[0], false, "defaults: " + reason);
  }

  /** True for {@link #fallback} defaults (predictions usable, not measured on this host). */
  public boolean isFallback() {
    return !measured && nanosPerByte > 0;
  }

  @Override
  public long[] sizes() { return sizes.clone(); }

  @Override
  public long[] medianNanos() { return medianNanos.clone(); }

  public long predictNanos(long bytes) {
    return fixedNanos + (long) (nanosPerByte * bytes);
  }

  /** α in µs per MiB (the thesis' unit). */
  public double microsPerMiB() { return nanosPerByte * (1 << 20) / 1000.0; }

  /** Bandwidth implied by α, GB/s (10^9 bytes). */
  public double gigabytesPerSecond() { return nanosPerByte <= 0 ? Double.POSITIVE_INFINITY : 1 / nanosPerByte; }

  /**
   * Smallest size at which this mover's predicted latency is at most {@code baseline}'s:
   * 0 if it always is, -1 if it never is (its α is not lower).
   */
  public long breakEvenBytes(Calibration baseline) {
    if (fixedNanos <= baseline.fixedNanos && nanosPerByte <= baseline.nanosPerByte) {
      return 0;
    }
    if (nanosPerByte >= baseline.nanosPerByte) {
      return -1;
    }
    return (long) Math.ceil((fixedNanos - baseline.fixedNanos)
        / (baseline.nanosPerByte - nanosPerByte));
  }

  @Override
  public String toString() {
    if (isFallback()) {
      return String.format("L_fixed=%.1fus alpha=%.1fus/MiB (%s)", fixedNanos / 1000.0,
          microsPerMiB(), note);
    }
    if (!measured) {
      return "uncalibrated";
    }
    return String.format("L_fixed=%.1fus alpha=%.1fus/MiB (%.2f GB/s) from %s",
        fixedNanos / 1000.0, microsPerMiB(), gigabytesPerSecond(), Arrays.toString(sizes));
  }
}
