package io.grpcshm.loadgen;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;

/** Renders a {@link RunResult} as ghz does: summary (text), JSON and CSV. */
final class Report {
  /** Percentiles of the latency distribution: ghz's, plus 99.9 and 99.99. */
  static final double[] PERCENTILES = {10, 25, 50, 75, 90, 95, 99, 99.9, 99.99};
  static final String CSV_HEADER =
      "request,worker,timestamp_unix_nanos,duration_ms,status,error,transport";
  private static final int BUCKETS = 10;
  private static final int BAR_WIDTH = 40;

  private Report() {}

  /** Go-like duration text: 1.23 s, 4.56 ms, 78.9 µs. */
  static String duration(long nanos) {
    if (nanos >= 1_000_000_000L) {
      return String.format(Locale.ROOT, "%.2f s", nanos / 1e9);
    }
    if (nanos >= 1_000_000L) {
      return String.format(Locale.ROOT, "%.2f ms", nanos / 1e6);
    }
    return String.format(Locale.ROOT, "%.1f µs", nanos / 1e3);
  }

  /** ghz's response time histogram: BUCKETS+1 marks from fastest to slowest, counts ≤ mark. */
  static long[][] buckets(Histogram h) {
    if (h.getTotalCount() == 0) {
      return new long[0][];
    }
    long min = h.getMinValue();
    long max = h.getMaxValue();
    long[][] out = new long[BUCKETS + 1][];
    for (int i = 0; i <= BUCKETS; i++) {
      out[i] = new long[] {i == BUCKETS ? max : min + (max - min) * i / BUCKETS, 0};
    }
    for (HistogramIterationValue v : h.recordedValues()) {
      long value = h.lowestEquivalentValue(v.getValueIteratedTo());
      int i = 0;
      while (i < BUCKETS && out[i][0] < value) {
        i++;
      }
      out[i][1] += v.getCountAtValueIteratedTo();
    }
    return out;
  }

  static void summary(RunResult r, String title, PrintWriter out) {
    out.println();
    out.println("Summary:");
    if (title != null && !title.isBlank()) {
      out.printf("  Name:\t%s%n", title);
    }
    out.printf("  Count:\t%d%n", r.count());
    out.printf("  Total:\t%s%n", duration(r.totalNanos()));
    if (r.timedCount() > 0) {
      out.printf("  Slowest:\t%s%n", duration(r.raw().getMaxValue()));
      out.printf("  Fastest:\t%s%n", duration(r.raw().getMinValue()));
      out.printf("  Average:\t%s%n", duration(r.averageNanos()));
    }
    out.printf(Locale.ROOT, "  Requests/sec:\t%.2f%n", r.rps());
    if (r.skipped() > 0) {
      out.printf("  Skipped:\t%d (first responses, --skipFirst)%n", r.skipped());
    }
    if (r.messagesSent() > r.count() || r.messagesReceived() > r.count()) {
      out.printf("  Stream messages:\t%d sent, %d received%n", r.messagesSent(),
          r.messagesReceived());
    }
    if (r.timedCount() > 0) {
      out.println();
      out.println("Response time histogram:");
      long[][] b = buckets(r.raw());
      long maxCount = 1;
      for (long[] x : b) {
        maxCount = Math.max(maxCount, x[1]);
      }
      for (long[] x : b) {
        int bar = (int) (x[1] * BAR_WIDTH / maxCount);
        out.printf(Locale.ROOT, "  %-10s [%d]\t|%s%n", duration(x[0]), x[1], "∎".repeat(bar));
      }
      out.println();
      if (r.corrected() != null) {
        out.printf("Latency distribution (corrected for coordinated omission, expected interval "
            + "%s per worker):%n", duration(r.expectedIntervalNanos()));
      } else {
        out.println("Latency distribution:");
      }
      for (double p : PERCENTILES) {
        out.printf(Locale.ROOT, "  %s %% in %s%n", pct(p),
            duration(r.shown().getValueAtPercentile(p)));
      }
      if (r.corrected() != null) {
        out.printf("  (uncorrected: p50 %s, p99 %s, p99.9 %s)%n",
            duration(r.raw().getValueAtPercentile(50)),
            duration(r.raw().getValueAtPercentile(99)),
            duration(r.raw().getValueAtPercentile(99.9)));
      }
    }
    out.println();
    out.println("Status code distribution:");
    for (Map.Entry<Status.Code, Long> e : r.codes().entrySet()) {
      out.printf("  [%s]\t%d responses%n", e.getKey(), e.getValue());
    }
    if (!r.errors().isEmpty()) {
      out.println();
      out.println("Error distribution:");
      for (Map.Entry<String, Long> e : r.errors().entrySet()) {
        out.printf("  [%d]\t%s%n", e.getValue(), e.getKey());
      }
    }
    out.println();
    out.println("Transport path distribution:");
    for (Map.Entry<TransportPath, Long> e : r.paths().entrySet()) {
      out.printf("  [%s]\t%d calls%n", e.getKey(), e.getValue());
    }
    steps(out, "Load schedule (calls started per step):", "calls/s", r.loadSteps());
    steps(out, "Concurrency schedule (calls started per step):", "workers",
        r.concurrencySteps());
    out.flush();
  }

  private static void steps(PrintWriter out, String heading, String unit,
      List<RunResult.StepStat> steps) {
    if (steps.isEmpty()) {
      return;
    }
    out.println();
    out.println(heading);
    for (RunResult.StepStat s : steps) {
      out.printf(Locale.ROOT, "  [%d] %.2f-%.2f s\ttarget %s %s\t%d calls\t%.1f calls/s\t"
          + "%d workers%n", s.index(), s.startNanos() / 1e9, s.endNanos() / 1e9,
          number(s.target()), unit,
          s.calls(), s.achievedRps(), s.workers());
    }
  }

  /** A number without a needless ".0": 50, 12.5. */
  static String number(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e15 ? Long.toString((long) v)
        : Double.toString(v);
  }

  static String pct(double p) {
    return p == Math.rint(p) ? Long.toString((long) p) : Double.toString(p);
  }

  static JsonObject json(RunResult r, Map<String, Object> options) {
    JsonObject o = new JsonObject();
    o.addProperty("date", r.startedAt().toString());
    JsonObject opts = new JsonObject();
    options.forEach((k, v) -> {
      if (v instanceof Number n) {
        opts.addProperty(k, n);
      } else if (v instanceof Boolean b) {
        opts.addProperty(k, b);
      } else if (v != null) {
        opts.addProperty(k, v.toString());
      }
    });
    o.add("options", opts);
    o.addProperty("count", r.count());
    o.addProperty("total", r.totalNanos());
    o.addProperty("average", r.averageNanos());
    o.addProperty("fastest", r.timedCount() == 0 ? 0 : r.raw().getMinValue());
    o.addProperty("slowest", r.timedCount() == 0 ? 0 : r.raw().getMaxValue());
    o.addProperty("rps", r.rps());
    o.addProperty("unit", "ns");
    JsonArray hist = new JsonArray();
    for (long[] b : buckets(r.raw())) {
      JsonObject x = new JsonObject();
      x.addProperty("mark", b[0]);
      x.addProperty("count", b[1]);
      x.addProperty("frequency",
          r.timedCount() == 0 ? 0 : (double) b[1] / r.timedCount());
      hist.add(x);
    }
    o.add("histogram", hist);
    o.add("latencyDistribution", distribution(r.shown(), r.timedCount()));
    JsonObject co = new JsonObject();
    co.addProperty("corrected", r.corrected() != null);
    co.addProperty("expectedIntervalNanos", r.expectedIntervalNanos());
    o.add("coordinatedOmission", co);
    if (r.corrected() != null) {
      o.add("latencyDistributionUncorrected", distribution(r.raw(), r.timedCount()));
    }
    JsonObject codes = new JsonObject();
    r.codes().forEach((k, v) -> codes.addProperty(k.name(), v));
    o.add("statusCodeDistribution", codes);
    JsonObject errors = new JsonObject();
    r.errors().forEach(errors::addProperty);
    o.add("errorDistribution", errors);
    JsonObject paths = new JsonObject();
    r.paths().forEach((k, v) -> paths.addProperty(k.name(), v));
    o.add("transportPathDistribution", paths);
    o.addProperty("skipped", r.skipped());
    JsonObject stream = new JsonObject();
    stream.addProperty("sent", r.messagesSent());
    stream.addProperty("received", r.messagesReceived());
    o.add("streamMessages", stream);
    if (!r.loadSteps().isEmpty()) {
      o.add("loadSteps", steps(r.loadSteps()));
    }
    if (!r.concurrencySteps().isEmpty()) {
      o.add("concurrencySteps", steps(r.concurrencySteps()));
    }
    return o;
  }

  private static JsonArray steps(List<RunResult.StepStat> steps) {
    JsonArray a = new JsonArray();
    for (RunResult.StepStat s : steps) {
      JsonObject x = new JsonObject();
      x.addProperty("index", s.index());
      x.addProperty("start", s.startNanos());
      x.addProperty("end", s.endNanos());
      x.addProperty("target", s.target());
      x.addProperty("calls", s.calls());
      x.addProperty("achievedRps", s.achievedRps());
      x.addProperty("workers", s.workers());
      a.add(x);
    }
    return a;
  }

  private static JsonArray distribution(Histogram h, long count) {
    JsonArray dist = new JsonArray();
    if (count == 0) {
      return dist;
    }
    for (double p : PERCENTILES) {
      JsonObject x = new JsonObject();
      x.addProperty("percentage", p);
      x.addProperty("latency", h.getValueAtPercentile(p));
      dist.add(x);
    }
    return dist;
  }

  static String jsonText(RunResult r, Map<String, Object> options) {
    return new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create()
        .toJson(json(r, options));
  }

  /** One row per call (needs details kept). */
  static void csv(RunResult r, PrintWriter out) {
    out.println(CSV_HEADER);
    for (Runner.Detail d : r.details()) {
      out.printf(Locale.ROOT, "%d,%d,%d,%.6f,%s,%s,%s%n", d.requestNumber(), d.workerId(),
          d.startEpochNanos(), d.latencyNanos() / 1e6, d.code(), csvField(d.error()),
          d.path() == null ? "" : d.path().name());
    }
    out.flush();
  }

  static String csvField(String s) {
    if (s == null) {
      return "";
    }
    if (s.contains(",") || s.contains("\"") || s.contains("\n")) {
      return "\"" + s.replace("\"", "\"\"") + "\"";
    }
    return s;
  }
}
