package io.grpcshm.loadgen;

import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * The merged outcome of a run. Latencies are in nanoseconds. {@code corrected} is present only
 * for rate-limited runs: each worker's latencies recorded with
 * {@link Histogram#recordValueWithExpectedInterval} at the worker's share of the rate
 * (concurrency / rps at the call's start), which back-fills the calls a stalled worker failed to
 * send (coordinated omission). {@code skipped} responses (--skipFirst) are in none of the
 * statistics; the per-step counts of a schedule count every call started (the offered load).
 */
record RunResult(Instant startedAt, long totalNanos, long expectedIntervalNanos, Histogram raw,
    Histogram corrected, Map<Status.Code, Long> codes, Map<String, Long> errors,
    Map<TransportPath, Long> paths, List<Runner.Detail> details, long sumNanos, long skipped,
    long messagesSent, long messagesReceived, List<StepStat> loadSteps,
    List<StepStat> concurrencySteps) {

  /**
   * One step of a schedule: its target (calls/s or workers), the calls started in it, and how
   * many workers started them.
   */
  record StepStat(int index, long startNanos, long endNanos, double target, long calls,
      int workers) {
    double achievedRps() {
      return endNanos <= startNanos ? 0 : calls * 1e9 / (endNanos - startNanos);
    }
  }

  /** Calls in the statistics (failed ones too, timed or not). */
  long count() {
    long n = 0;
    for (long c : codes.values()) {
      n += c;
    }
    return n;
  }

  /** Calls in the latency statistics: without --count-errors, the OK ones. */
  long timedCount() {
    return raw.getTotalCount();
  }

  double rps() {
    return totalNanos == 0 ? 0 : count() * 1e9 / totalNanos;
  }

  /** Exact mean latency (the histogram's mean is bucketed). */
  long averageNanos() {
    return timedCount() == 0 ? 0 : sumNanos / timedCount();
  }

  /** The histogram the latency distribution shows: corrected when rate-limited. */
  Histogram shown() {
    return corrected != null ? corrected : raw;
  }

  /** One worker's tally, merged by the Builder. */
  static final class Part {
    final Histogram raw = new Histogram(3);
    final Histogram corrected = new Histogram(3);
    final Map<Status.Code, Long> codes = new EnumMap<>(Status.Code.class);
    final Map<String, Long> errors = new HashMap<>();
    final Map<TransportPath, Long> paths = new EnumMap<>(TransportPath.class);
    final List<Runner.Detail> details = new ArrayList<>();
    long sumNanos;
    long sent;
    long received;
    long[] loadStepCalls = new long[1];
    long[] concurrencyStepCalls = new long[1];

    /** One call; {@code timed}: its latency goes into the latency statistics. */
    void record(long latency, long expectedInterval, Status.Code code, String error,
        TransportPath path, long sent, long received, boolean timed) {
      if (timed) {
        raw.recordValue(latency);
        if (expectedInterval > 0) {
          corrected.recordValueWithExpectedInterval(latency, expectedInterval);
        }
        sumNanos += latency;
      }
      this.sent += sent;
      this.received += received;
      codes.merge(code, 1L, Long::sum);
      if (error != null) {
        errors.merge(error, 1L, Long::sum);
      }
      if (code == Status.Code.OK || path != null) {
        paths.merge(path == null ? TransportPath.OTHER : path, 1L, Long::sum);
      }
    }

    void countLoadStep(long step) {
      loadStepCalls = bump(loadStepCalls, step);
    }

    void countConcurrencyStep(long step) {
      concurrencyStepCalls = bump(concurrencyStepCalls, step);
    }

    private static long[] bump(long[] a, long step) {
      int i = (int) Math.min(step, Integer.MAX_VALUE - 8);
      if (i >= a.length) {
        a = Arrays.copyOf(a, Math.max(i + 1, a.length * 2));
      }
      a[i]++;
      return a;
    }
  }

  static final class Builder {
    private final Instant startedAt;
    private final long totalNanos;
    private final long expectedIntervalNanos;
    private final long skipped;
    private final Histogram raw = new Histogram(3);
    private final Histogram corrected = new Histogram(3);
    private final Map<Status.Code, Long> codes = new EnumMap<>(Status.Code.class);
    private final Map<String, Long> errors = new TreeMap<>();
    private final Map<TransportPath, Long> paths = new EnumMap<>(TransportPath.class);
    private final List<Runner.Detail> details = new ArrayList<>();
    private final List<Part> parts = new ArrayList<>();
    private long sumNanos;
    private long sent;
    private long received;

    Builder(Instant startedAt, long totalNanos, long expectedIntervalNanos, long skipped) {
      this.startedAt = startedAt;
      this.totalNanos = totalNanos;
      this.expectedIntervalNanos = expectedIntervalNanos;
      this.skipped = skipped;
    }

    void add(Part p) {
      parts.add(p);
      raw.add(p.raw);
      corrected.add(p.corrected);
      p.codes.forEach((k, v) -> codes.merge(k, v, Long::sum));
      p.errors.forEach((k, v) -> errors.merge(k, v, Long::sum));
      p.paths.forEach((k, v) -> paths.merge(k, v, Long::sum));
      details.addAll(p.details);
      sumNanos += p.sumNanos;
      sent += p.sent;
      received += p.received;
    }

    RunResult build(Runner.Config config) {
      details.sort(Comparator.comparingLong(Runner.Detail::requestNumber));
      List<StepStat> load = List.of();
      List<StepStat> conc = List.of();
      if (config != null && config.rateSchedule() != null
          && !config.rateSchedule().isConstant()) {
        load = steps(config.rateSchedule(), true);
      }
      if (config != null && !config.concurrencySchedule().isConstant()) {
        conc = steps(config.concurrencySchedule(), false);
      }
      return new RunResult(startedAt, totalNanos, expectedIntervalNanos, raw,
          expectedIntervalNanos > 0 ? corrected : null, codes, errors, paths, details, sumNanos,
          skipped, sent, received, load, conc);
    }

    /** Steps that began before the run ended, each cut at the run's end. */
    private List<StepStat> steps(Schedule s, boolean load) {
      List<StepStat> out = new ArrayList<>();
      long last = s.lastStep();
      for (int i = 0; s.stepStartNanos(i) < totalNanos; i++) {
        long begin = s.stepStartNanos(i);
        long end = i >= last ? totalNanos : Math.min(totalNanos, s.stepStartNanos(i + 1));
        long calls = 0;
        int workers = 0;
        for (Part p : parts) {
          long[] a = load ? p.loadStepCalls : p.concurrencyStepCalls;
          long n = i < a.length ? a[i] : 0;
          calls += n;
          workers += n > 0 ? 1 : 0;
        }
        out.add(new StepStat(i, begin, end, s.valueOfStep(i), calls, workers));
        if (i >= last) {
          break;
        }
      }
      return out;
    }
  }
}
