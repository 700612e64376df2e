package io.grpcshm.loadgen;

import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * The merged outcome of a run. Latencies are in nanoseconds. {@code corrected} is present only
 * for rate-limited runs: each worker's latencies recorded with
 * {@link Histogram#recordValueWithExpectedInterval} at the worker's share of the rate
 * (concurrency / rps), which back-fills the calls a stalled worker failed to send (coordinated
 * omission).
 */
record RunResult(Instant startedAt, long totalNanos, long expectedIntervalNanos, Histogram raw,
    Histogram corrected, Map<Status.Code, Long> codes, Map<String, Long> errors,
    Map<TransportPath, Long> paths, List<Runner.Detail> details) {

  long count() {
    return raw.getTotalCount();
  }

  double rps() {
    return totalNanos == 0 ? 0 : count() * 1e9 / totalNanos;
  }

  /** The histogram the latency distribution shows: corrected when rate-limited. */
  Histogram shown() {
    return corrected != null ? corrected : raw;
  }

  static final class Builder {
    private final Instant startedAt;
    private final long totalNanos;
    private final long expectedIntervalNanos;
    private final Histogram raw = new Histogram(3);
    private final Histogram corrected = new Histogram(3);
    private final Map<Status.Code, Long> codes = new EnumMap<>(Status.Code.class);
    private final Map<String, Long> errors = new TreeMap<>();
    private final Map<TransportPath, Long> paths = new EnumMap<>(TransportPath.class);
    private final List<Runner.Detail> details = new ArrayList<>();

    Builder(Instant startedAt, long totalNanos, long expectedIntervalNanos) {
      this.startedAt = startedAt;
      this.totalNanos = totalNanos;
      this.expectedIntervalNanos = expectedIntervalNanos;
    }

    void add(Histogram r, Histogram c, Map<Status.Code, Long> codes, Map<String, Long> errors,
        Map<TransportPath, Long> paths, List<Runner.Detail> details) {
      raw.add(r);
      corrected.add(c);
      codes.forEach((k, v) -> this.codes.merge(k, v, Long::sum));
      errors.forEach((k, v) -> this.errors.merge(k, v, Long::sum));
      paths.forEach((k, v) -> this.paths.merge(k, v, Long::sum));
      this.details.addAll(details);
    }

    RunResult build() {
      details.sort(Comparator.comparingLong(Runner.Detail::requestNumber));
      return new RunResult(startedAt, totalNanos, expectedIntervalNanos, raw,
          expectedIntervalNanos > 0 ? corrected : null, codes, errors, paths, details);
    }
  }
}
