package io.grpcshm.loadgen;

import java.io.PrintWriter;
import java.math.BigDecimal;
import java.util.LinkedHashMap;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;

/**
 * A run in the Prometheus text exposition format 0.0.4 (as for a Pushgateway or a textfile
 * collector): counters per status code and transport path, the latency as a histogram with
 * cumulative {@code le} buckets (1-2.5-5 steps from 10 µs to 50 s, then +Inf) plus
 * {@code _sum}/{@code _count}, the percentiles as a summary, and gauges for the run's figures.
 * Seconds, as Prometheus' base unit. Every sample carries the run's labels (name, call, target,
 * transport).
 */
final class PrometheusReport {
  static final double[] BOUNDS_SECONDS;

  static {
    BOUNDS_SECONDS = new double[21];
    int i = 0;
    for (int exp = -5; exp <= 1; exp++) {
      for (double m : new double[] {1, 2.5, 5}) {
        BOUNDS_SECONDS[i++] = new BigDecimal(m).scaleByPowerOfTen(exp).doubleValue();
      }
    }
  }

  private PrometheusReport() {}

  static void write(RunResult r, Map<String, Object> options, PrintWriter out) {
    Map<String, String> labels = new LinkedHashMap<>();
    for (String k : new String[] {"name", "call", "host", "transport"}) {
      Object v = options.get(k);
      if (v != null) {
        labels.put(k.equals("host") ? "target" : k, v.toString());
      }
    }
    String base = labels(labels, null, null);

    family(out, "grpc_load_requests_total", "counter",
        "Calls reported (after --skipFirst), by gRPC status code.");
    r.codes().forEach((code, n) -> sample(out, "grpc_load_requests_total",
        labels(labels, "code", code.name()), n));
    family(out, "grpc_load_errors_total", "counter", "Calls that ended with a non-OK status.");
    long errors = r.errors().values().stream().mapToLong(Long::longValue).sum();
    sample(out, "grpc_load_errors_total", base, errors);
    family(out, "grpc_load_transport_path_total", "counter",
        "Calls by the path they took (SHARED_MEMORY, TCP, OTHER).");
    r.paths().forEach((path, n) -> sample(out, "grpc_load_transport_path_total",
        labels(labels, "path", path.name()), n));
    family(out, "grpc_load_skipped_total", "counter",
        "First responses left out of the statistics (--skipFirst).");
    sample(out, "grpc_load_skipped_total", base, r.skipped());

    family(out, "grpc_load_latency_seconds", "histogram", "Call latency (measured).");
    long[] cumulative = cumulative(r.raw());
    for (int i = 0; i < BOUNDS_SECONDS.length; i++) {
      sample(out, "grpc_load_latency_seconds_bucket",
          labels(labels, "le", format(BOUNDS_SECONDS[i])), cumulative[i]);
    }
    sample(out, "grpc_load_latency_seconds_bucket", labels(labels, "le", "+Inf"),
        r.timedCount());
    sample(out, "grpc_load_latency_seconds_sum", base, r.sumNanos() / 1e9);
    sample(out, "grpc_load_latency_seconds_count", base, r.timedCount());

    family(out, "grpc_load_latency_quantiles_seconds", "summary", "Latency percentiles"
        + (r.corrected() != null ? ", corrected for coordinated omission." : "."));
    if (r.timedCount() > 0) {
      for (double p : Report.PERCENTILES) {
        sample(out, "grpc_load_latency_quantiles_seconds",
            labels(labels, "quantile", format(p / 100)), r.shown().getValueAtPercentile(p) / 1e9);
      }
    }
    sample(out, "grpc_load_latency_quantiles_seconds_sum", base, r.sumNanos() / 1e9);
    sample(out, "grpc_load_latency_quantiles_seconds_count", base, r.timedCount());

    gauge(out, base, "grpc_load_duration_seconds", "Wall time of the run.", r.totalNanos() / 1e9);
    gauge(out, base, "grpc_load_requests_per_second", "Reported calls per second of the run.",
        r.rps());
    gauge(out, base, "grpc_load_fastest_seconds", "Fastest call.",
        r.timedCount() == 0 ? 0 : r.raw().getMinValue() / 1e9);
    gauge(out, base, "grpc_load_slowest_seconds", "Slowest call.",
        r.timedCount() == 0 ? 0 : r.raw().getMaxValue() / 1e9);
    gauge(out, base, "grpc_load_average_seconds", "Mean call latency.", r.averageNanos() / 1e9);
    family(out, "grpc_load_stream_messages_total", "counter",
        "Messages sent and received by the calls (1 each way for unary).");
    sample(out, "grpc_load_stream_messages_total", labels(labels, "direction", "sent"),
        r.messagesSent());
    sample(out, "grpc_load_stream_messages_total", labels(labels, "direction", "received"),
        r.messagesReceived());
    out.flush();
  }

  /** Calls at or below each bound. */
  static long[] cumulative(Histogram h) {
    long[] counts = new long[BOUNDS_SECONDS.length];
    for (HistogramIterationValue v : h.recordedValues()) {
      double seconds = h.lowestEquivalentValue(v.getValueIteratedTo()) / 1e9;
      for (int i = 0; i < BOUNDS_SECONDS.length; i++) {
        if (seconds <= BOUNDS_SECONDS[i]) {
          counts[i] += v.getCountAtValueIteratedTo();
        }
      }
    }
    return counts;
  }

  private static void family(PrintWriter out, String name, String type, String help) {
    out.println("# HELP " + name + " " + help.replace("\\", "\\\\").replace("\n", "\\n"));
    out.println("# TYPE " + name + " " + type);
  }

  private static void gauge(PrintWriter out, String labels, String name, String help,
      double value) {
    family(out, name, "gauge", help);
    sample(out, name, labels, value);
  }

  private static void sample(PrintWriter out, String name, String labels, double value) {
    out.println(name + labels + " " + format(value));
  }

  private static String labels(Map<String, String> common, String key, String value) {
    StringBuilder sb = new StringBuilder();
    common.forEach((k, v) -> append(sb, k, v));
    if (key != null) {
      append(sb, key, value);
    }
    return sb.isEmpty() ? "" : "{" + sb + "}";
  }

  private static void append(StringBuilder sb, String k, String v) {
    if (!sb.isEmpty()) {
      sb.append(',');
    }
    sb.append(k).append("=\"").append(v.replace("\\", "\\\\").replace("\"", "\\\"")
        .replace("\n", "\\n")).append('"');
  }

  /** Plain decimal (no exponent), as Prometheus' own clients print bucket bounds. */
  static String format(double v) {
    if (Double.isNaN(v)) {
      return "NaN";
    }
    if (Double.isInfinite(v)) {
      return v > 0 ? "+Inf" : "-Inf";
    }
    if (v == Math.rint(v) && Math.abs(v) < 1e15) {
      return Long.toString((long) v);
    }
    return BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
  }
}
