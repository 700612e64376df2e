package io.grpcshm.dsa;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Fits L = L_fixed + α·size for a mover on this host: a trimmed median of sync-copy latencies per
 * size on pre-faulted, reused buffers (page faults are a separate cost: see the benchmarks), then
 * a least-squares fit weighted by 1/L² so small and large sizes count alike (relative error).
 *
 * <p>Services start on busy hosts. Preemption only ever adds time to a sample, so the slowest
 * quarter of each size's samples is dropped before the median; a fit that is still implausible
 * (α ≤ 0, a bandwidth no memory system has, a line that misses its own points by more than 2×)
 * is measured again, and after {@link #ATTEMPTS} rejections the mover gets
 * {@link Calibration#fallback conservative defaults} with the reason logged — never a line such
 * as "331 µs fixed, infinitely fast" from a measurement whose small sizes were all preempted.
 */
final class Calibrator {
  private static final Logger LOG = Logger.getLogger(Calibrator.class.getName());
  static final long[] DEFAULT_SIZES = {4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20};
  /** Measurements tried before the defaults are used. */
  static final int ATTEMPTS = 3;
  /** Pause between attempts, so a burst of other work at start-up can pass. */
  private static final long RETRY_PAUSE_NANOS = 50_000_000L;
  /** Plausible bandwidths for one copy of pre-faulted memory, bytes per ns (= GB/s). */
  static final double MIN_GIGABYTES_PER_SECOND = 0.05;
  static final double MAX_GIGABYTES_PER_SECOND = 500;
  /** A fixed cost above this is scheduling noise, not a copy's set-up. */
  static final long MAX_FIXED_NANOS = 5_000_000;
  /** Largest accepted ratio between a size's measurement and the fitted line (either way). */
  static final double MAX_MISFIT = 2.0;

  private Calibrator() {}

  /** One synchronous copy of {@code n} bytes from the start of {@code src} to {@code dst}. */
  @FunctionalInterface
  interface Copier {
    void copy(MemorySegment src, MemorySegment dst, long n);
  }

  static Calibration calibrate(DataMover m, long[] sizes, int reps) {
    WaitStrategy spin = WaitStrategy.spin();
    return calibrate(m.kind().toString(), (src, dst, n) -> m.copy(src, 0, dst, 0, n, false, spin),
        sizes, reps);
  }

  static Calibration calibrate(String mover, Copier m, long[] sizes, int reps) {
    String rejected = null;
    for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (attempt > 1) {
        LockSupport.parkNanos(RETRY_PAUSE_NANOS);
      }
      long[] typical = measure(m, sizes, reps);
      Calibration c = fit(sizes, typical);
      rejected = implausibility(c);
      if (rejected == null) {
        return c;
      }
      LOG.log(Level.FINE, "{0} calibration attempt {1} rejected: {2}",
          new Object[] {mover, attempt, rejected});
    }
    Calibration defaults = Calibration.fallback(ATTEMPTS + " measurements rejected, last: "
        + rejected);
    LOG.log(Level.WARNING, "{0} mover: calibration not plausible (host busy?), using {1}",
        new Object[] {mover, defaults});
    return defaults;
  }

  /** Trimmed median latency per size, ns. */
  private static long[] measure(Copier m, long[] sizes, int reps) {
    long max = Arrays.stream(sizes).max().orElseThrow();
    long[] typical = new long[sizes.length];
    try (Arena a = Arena.ofShared()) { // shared: a mover may copy on helper threads
      MemorySegment src = a.allocate(max, 4096);
      MemorySegment dst = a.allocate(max, 4096);
      src.fill((byte) 1);
      dst.fill((byte) 2); // fault both in: calibrate the copy, not the kernel
      long[] samples = new long[reps];
      warmUp(m, src, dst, sizes[0]);
      for (int s = 0; s < sizes.length; s++) {
        long n = sizes[s];
        for (int w = 0; w < 3; w++) {
          m.copy(src, dst, n);
        }
        for (int r = 0; r < reps; r++) {
          long t0 = System.nanoTime();
          m.copy(src, dst, n);
          samples[r] = System.nanoTime() - t0;
        }
        typical[s] = trimmedMedian(samples);
      }
    }
    return typical;
  }

  /** Median of the samples left after dropping the slowest quarter (preemption only adds). */
  static long trimmedMedian(long[] samples) {
    long[] sorted = samples.clone();
    Arrays.sort(sorted);
    int kept = Math.max(1, sorted.length - sorted.length / 4);
    return sorted[(kept - 1) / 2];
  }

  /**
   * Runs rounds of small copies until two rounds in a row agree within 25% (the JIT has
   * compiled the submit, poll and worker paths), at most one second: otherwise we would
   * calibrate the interpreter.
   */
  private static void warmUp(Copier m, MemorySegment src, MemorySegment dst, long size) {
    long end = System.nanoTime() + 1_000_000_000L;
    long prev = Long.MAX_VALUE;
    while (System.nanoTime() - end < 0) {
      long t0 = System.nanoTime();
      for (int i = 0; i < 1000; i++) {
        m.copy(src, dst, size);
      }
      long t = System.nanoTime() - t0;
      if (t <= prev * 1.25 && prev <= t * 1.25) {
        return;
      }
      prev = t;
    }
  }

  /** Why {@code c} cannot be this host's copy cost, or null if it can. */
  static String implausibility(Calibration c) {
    if (c.nanosPerByte() <= 0) {
      return "alpha <= 0: larger copies were not slower than small ones " + points(c);
    }
    double gbps = 1 / c.nanosPerByte();
    if (gbps < MIN_GIGABYTES_PER_SECOND || gbps > MAX_GIGABYTES_PER_SECOND) {
      return String.format("bandwidth %.3g GB/s outside [%s, %s] %s", gbps,
          MIN_GIGABYTES_PER_SECOND, MAX_GIGABYTES_PER_SECOND, points(c));
    }
    if (c.fixedNanos() > MAX_FIXED_NANOS) {
      return "L_fixed " + c.fixedNanos() / 1000 + " us is scheduling noise " + points(c);
    }
    long[] sizes = c.sizes();
    long[] measured = c.medianNanos();
    for (int i = 0; i < sizes.length; i++) {
      double predicted = Math.max(1, c.predictNanos(sizes[i]));
      double ratio = Math.max(1, measured[i]) / predicted;
      if (ratio > MAX_MISFIT || ratio < 1 / MAX_MISFIT) {
        return String.format("the line misses %d B by %.1fx %s", sizes[i], ratio, points(c));
      }
    }
    return null;
  }

  private static String points(Calibration c) {
    return "(sizes " + Arrays.toString(c.sizes()) + " B, ns " + Arrays.toString(c.medianNanos())
        + ")";
  }

  /** Weighted least squares, weights 1/y²; clamps to non-negative parameters. */
  static Calibration fit(long[] sizes, long[] medians) {
    double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < sizes.length; i++) {
      double y = Math.max(1, medians[i]);
      double w = 1 / (y * y);
      double x = sizes[i];
      sw += w;
      sx += w * x;
      sy += w * y;
      sxx += w * x * x;
      sxy += w * x * y;
    }
    double det = sw * sxx - sx * sx;
    double b = det == 0 ? 0 : (sw * sxy - sx * sy) / det;
    double a = (sy - b * sx) / sw;
    if (b < 0) {
      b = 0;
      a = sy / sw;
    }
    if (a < 0) {
      // Through the origin instead: b = Σw·x·y / Σw·x².
      a = 0;
      b = sxy / sxx;
    }
    return new Calibration(Math.round(a), b, sizes, medians, true);
  }
}
