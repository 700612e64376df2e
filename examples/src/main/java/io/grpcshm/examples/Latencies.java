package io.grpcshm.examples;

import org.HdrHistogram.Histogram;

/** Call latencies in nanoseconds (HdrHistogram, 3 significant digits, up to 10 minutes). */
final class Latencies {
  private final Histogram histogram = new Histogram(600_000_000_000L, 3);

  void record(long nanos) {
    histogram.recordValue(Math.max(1, nanos));
  }

  void add(Latencies other) {
    histogram.add(other.histogram);
  }

  long count() {
    return histogram.getTotalCount();
  }

  long p50() {
    return histogram.getValueAtPercentile(50);
  }

  long p99() {
    return histogram.getValueAtPercentile(99);
  }

  /** Payload megabytes (10^6 B) per second at the median latency. */
  static double megabytesPerSecond(int bytes, long nanos) {
    return bytes * 1e3 / nanos;
  }

  /** "85 us", "3.4 ms": short, ASCII (Maven's console may not be UTF-8). */
  static String format(long nanos) {
    if (nanos < 10_000_000) {
      return nanos < 1_000_000 ? (nanos / 1_000) + " us" : String.format("%.2f ms", nanos / 1e6);
    }
    return String.format("%.1f ms", nanos / 1e6);
  }

  static String formatSize(int bytes) {
    if (bytes >= 1 << 20 && bytes % (1 << 20) == 0) {
      return (bytes >> 20) + " MiB";
    }
    if (bytes >= 1 << 10 && bytes % (1 << 10) == 0) {
      return (bytes >> 10) + " KiB";
    }
    return bytes + " B";
  }
}
