package io.grpcshm.dsa;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Fits L = L_fixed + α·size for a mover on this host: median sync-copy latency per size on
 * pre-faulted, reused buffers (page faults are a separate cost: see the benchmarks), then a
 * least-squares fit weighted by 1/L² so small and large sizes count alike (relative error).
 */
final class Calibrator {
  static final long[] DEFAULT_SIZES = {4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20};

  private Calibrator() {}

  static Calibration calibrate(DataMover m, long[] sizes, int reps) {
    long max = Arrays.stream(sizes).max().orElseThrow();
    long[] medians = new long[sizes.length];
    try (Arena a = Arena.ofConfined()) {
      MemorySegment src = a.allocate(max, 4096);
      MemorySegment dst = a.allocate(max, 4096);
      src.fill((byte) 1);
      dst.fill((byte) 2); // fault both in: calibrate the copy, not the kernel
      long[] samples = new long[reps];
      WaitStrategy spin = WaitStrategy.spin();
      warmUp(m, src, dst, sizes[0], spin);
      for (int s = 0; s < sizes.length; s++) {
        long n = sizes[s];
        for (int w = 0; w < 3; w++) {
          m.copy(src, 0, dst, 0, n, false, spin);
        }
        for (int r = 0; r < reps; r++) {
          long t0 = System.nanoTime();
          m.copy(src, 0, dst, 0, n, false, spin);
          samples[r] = System.nanoTime() - t0;
        }
        Arrays.sort(samples);
        medians[s] = samples[reps / 2];
      }
    }
    return fit(sizes, medians);
  }

  /**
   * Runs rounds of small copies until two rounds in a row agree within 25% (the JIT has
   * compiled the submit, poll and worker paths), at most one second: otherwise we would
   * calibrate the interpreter.
   */
  private static void warmUp(DataMover m, MemorySegment src, MemorySegment dst, long size,
      WaitStrategy spin) {
    long end = System.nanoTime() + 1_000_000_000L;
    long prev = Long.MAX_VALUE;
    while (System.nanoTime() - end < 0) {
      long t0 = System.nanoTime();
      for (int i = 0; i < 1000; i++) {
        m.copy(src, 0, dst, 0, size, false, spin);
      }
      long t = System.nanoTime() - t0;
      if (t <= prev * 1.25 && prev <= t * 1.25) {
        return;
      }
      prev = t;
    }
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
