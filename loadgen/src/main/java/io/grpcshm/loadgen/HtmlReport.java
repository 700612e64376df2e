package io.grpcshm.loadgen;

import com.google.gson.Gson;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramIterationValue;

/**
 * Self-contained HTML pages (no external scripts, styles or fonts: the page must work offline):
 * tables written here, charts drawn as inline SVG by charts.js from the figures embedded as
 * JSON. One page per run (summary, latency distribution, ghz's histogram, a log-scale histogram
 * for long tails, schedule steps) and one per compare (calls/s, p50 and p99 against payload
 * size, one series per transport).
 */
final class HtmlReport {
  /** Buckets per decade of the log-scale histogram. */
  static final int LOG_BUCKETS_PER_DECADE = 5;
  private static final Gson GSON = new Gson(); // escapes <, >, & so JSON is safe in <script>
  private static final String STYLE = """
      body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;
      max-width:1100px;color:#222;padding:0 1em}
      h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
      table{border-collapse:collapse;margin:.6em 0}td,th{padding:.25em .8em;text-align:left;
      border-bottom:1px solid #eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
      .charts{display:flex;flex-wrap:wrap;gap:1em}.chart .axis{stroke:#444}
      .chart .grid{stroke:#eee}.chart .tick{font-size:11px;fill:#555}
      .chart .chart-title{font-size:14px;font-weight:600}.chart .axis-title{font-size:12px}
      .chart .bar{fill:#1f77b4}.chart .legend{font-size:12px}.note{color:#666;font-size:.9em}
      """;

  private HtmlReport() {}

  static String run(RunResult r, Map<String, Object> options) {
    Object name = options.get("name");
    StringBuilder b = new StringBuilder();
    b.append("<h1>grpc-load report").append(name == null ? "" : ": " + esc(name.toString()))
        .append("</h1>\n");
    b.append("<p class=\"note\">").append(esc(String.valueOf(options.get("call"))))
        .append(" on ").append(esc(String.valueOf(options.get("host")))).append(", started ")
        .append(esc(r.startedAt().toString())).append("</p>\n");
    b.append("<section id=\"summary\"><h2>Summary</h2><table>\n");
    row(b, "Count", Long.toString(r.count()));
    row(b, "Total", Report.duration(r.totalNanos()));
    if (r.timedCount() > 0) {
      row(b, "Slowest", Report.duration(r.raw().getMaxValue()));
      row(b, "Fastest", Report.duration(r.raw().getMinValue()));
      row(b, "Average", Report.duration(r.averageNanos()));
    }
    row(b, "Requests/sec", String.format(Locale.ROOT, "%.2f", r.rps()));
    if (r.skipped() > 0) {
      row(b, "Skipped (--skipFirst)", Long.toString(r.skipped()));
    }
    row(b, "Stream messages", r.messagesSent() + " sent, " + r.messagesReceived() + " received");
    b.append("</table></section>\n");

    JsonObject charts = new JsonObject();
    if (r.timedCount() > 0) {
      b.append("<section id=\"latency\"><h2>Latency distribution</h2>");
      if (r.corrected() != null) {
        b.append("<p class=\"note\">Corrected for coordinated omission (expected interval ")
            .append(esc(Report.duration(r.expectedIntervalNanos())))
            .append(" per worker); uncorrected in the right column.</p>");
      }
      b.append("<table><tr><th>percentile</th><th>latency</th>")
          .append(r.corrected() != null ? "<th>uncorrected</th>" : "").append("</tr>\n");
      JsonArray labels = new JsonArray();
      JsonArray values = new JsonArray();
      for (double p : Report.PERCENTILES) {
        long v = r.shown().getValueAtPercentile(p);
        b.append("<tr><td>p").append(Report.pct(p)).append("</td><td class=\"n\">")
            .append(esc(Report.duration(v))).append("</td>");
        if (r.corrected() != null) {
          b.append("<td class=\"n\">").append(esc(Report.duration(
              r.raw().getValueAtPercentile(p)))).append("</td>");
        }
        b.append("</tr>\n");
        labels.add("p" + Report.pct(p));
        values.add(v);
      }
      b.append("</table><div class=\"charts\"><div data-chart=\"percentiles\"></div></div>")
          .append("</section>\n");
      charts.add("percentiles", bar("Latency by percentile", labels, values, "ns", false,
          "percentile", "latency"));

      labels = new JsonArray();
      values = new JsonArray();
      for (long[] x : Report.buckets(r.raw())) {
        labels.add("\u2264 " + Report.duration(x[0]));
        values.add(x[1]);
      }
      charts.add("histogram", bar("Response time histogram (ghz's 11 marks)", labels, values,
          "calls", false, "latency", "calls"));
      charts.add("logHistogram", logHistogram(r.raw()));
      b.append("<section id=\"histograms\"><h2>Response time histograms</h2>")
          .append("<p class=\"note\">The second chart has latency on a log scale (")
          .append(LOG_BUCKETS_PER_DECADE).append(" buckets per decade) and counts on a log ")
          .append("scale, so a long tail of rare slow calls stays visible.</p>")
          .append("<div class=\"charts\"><div data-chart=\"histogram\"></div>")
          .append("<div data-chart=\"logHistogram\"></div></div></section>\n");
    }

    b.append("<section id=\"status\"><h2>Status code distribution</h2><table>\n");
    for (Map.Entry<Status.Code, Long> e : r.codes().entrySet()) {
      row(b, e.getKey().name(), e.getValue() + " responses");
    }
    b.append("</table>");
    if (!r.errors().isEmpty()) {
      b.append("<h2>Error distribution</h2><table>\n");
      r.errors().forEach((k, v) -> row(b, Long.toString(v), k));
      b.append("</table>");
    }
    b.append("<h2>Transport path distribution</h2><table>\n");
    for (Map.Entry<TransportPath, Long> e : r.paths().entrySet()) {
      row(b, e.getKey().name(), e.getValue() + " calls");
    }
    b.append("</table></section>\n");

    steps(b, charts, "loadSteps", "Load schedule", "calls/s", r.loadSteps());
    steps(b, charts, "concurrencySteps", "Concurrency schedule", "workers",
        r.concurrencySteps());

    b.append("<section id=\"options\"><h2>Options</h2><table>\n");
    options.forEach((k, v) -> {
      if (v != null) {
        row(b, k, v.toString());
      }
    });
    b.append("</table></section>\n");
    return page("grpc-load" + (name == null ? "" : ": " + name), b.toString(), charts);
  }

  /** Latency buckets 10^(i/5) ns wide on a log scale, from the fastest to the slowest call. */
  static JsonObject logHistogram(Histogram h) {
    int lo = Integer.MAX_VALUE;
    int hi = Integer.MIN_VALUE;
    long[] counts = new long[64 * LOG_BUCKETS_PER_DECADE];
    for (HistogramIterationValue v : h.recordedValues()) {
      int i = logBucket(h.lowestEquivalentValue(v.getValueIteratedTo()));
      counts[i] += v.getCountAtValueIteratedTo();
      lo = Math.min(lo, i);
      hi = Math.max(hi, i);
    }
    JsonArray labels = new JsonArray();
    JsonArray values = new JsonArray();
    for (int i = lo; i <= hi; i++) {
      labels.add(Report.duration((long) Math.ceil(Math.pow(10, (double) i
          / LOG_BUCKETS_PER_DECADE))) + "+");
      values.add(counts[i]);
    }
    return bar("Latency histogram, log scales", labels, values, "calls", true,
        "latency (log scale)", "calls (log scale)");
  }

  static int logBucket(long nanos) {
    return (int) Math.floor(Math.log10(Math.max(1, nanos)) * LOG_BUCKETS_PER_DECADE + 1e-9);
  }

  private static void steps(StringBuilder b, JsonObject charts, String id, String title,
      String unit, List<RunResult.StepStat> steps) {
    if (steps.isEmpty()) {
      return;
    }
    b.append("<section id=\"").append(id).append("\"><h2>").append(title)
        .append("</h2><table><tr><th>step</th><th>from</th><th>to</th><th>target ")
        .append(unit).append("</th><th>calls started</th><th>calls/s</th><th>workers</th></tr>\n");
    JsonArray x = new JsonArray();
    JsonArray target = new JsonArray();
    JsonArray achieved = new JsonArray();
    for (RunResult.StepStat s : steps) {
      b.append(String.format(Locale.ROOT, "<tr><td>%d</td><td class=\"n\">%s</td>"
          + "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%d</td>"
          + "<td class=\"n\">%.1f</td><td class=\"n\">%d</td></tr>%n", s.index(),
          seconds(s.startNanos()), seconds(s.endNanos()),
          Report.number(s.target()), s.calls(), s.achievedRps(), s.workers()));
      x.add(s.startNanos() / 1e9);
      target.add(s.target());
      achieved.add(unit.equals("workers") ? s.workers() : s.achievedRps());
    }
    b.append("</table><div class=\"charts\"><div data-chart=\"").append(id)
        .append("\"></div></div></section>\n");
    JsonObject c = new JsonObject();
    c.addProperty("kind", "line");
    c.addProperty("title", title + ": target and achieved " + unit + " per step");
    c.add("x", x);
    c.addProperty("xUnit", "s");
    c.addProperty("unit", "");
    c.addProperty("xTitle", "step start (s)");
    c.addProperty("yTitle", unit);
    JsonArray series = new JsonArray();
    series.add(series("target", target));
    series.add(series(unit.equals("workers") ? "workers that started calls" : "achieved",
        achieved));
    c.add("series", series);
    charts.add(id, c);
  }

  private static String seconds(long nanos) {
    return String.format(Locale.ROOT, "%.2f s", nanos / 1e9);
  }

  /** The compare page from compare's JSON (results[].transports.T.{rps,p50,p99,...}). */
  static String compare(JsonObject cmp) {
    JsonArray results = cmp.getAsJsonArray("results");
    List<String> transports = results.isEmpty() ? List.of()
        : List.copyOf(results.get(0).getAsJsonObject().getAsJsonObject("transports").keySet());
    StringBuilder b = new StringBuilder("<h1>grpc-load compare</h1>\n<p class=\"note\">")
        .append(esc(cmp.get("call").getAsString())).append(" on ")
        .append(esc(cmp.get("target").getAsString()))
        .append(cmp.get("hostedInThisJvm").getAsBoolean() ? " (hosted in this JVM)" : "")
        .append("; ").append(cmp.get("rounds").getAsInt()).append(" rounds of ")
        .append(cmp.get("callsPerCellPerRound").getAsInt()).append(" calls per cell, ")
        .append(cmp.get("concurrency").getAsInt()).append(" in flight</p>\n");
    b.append("<section id=\"results\"><h2>Results</h2><table><tr><th>payload</th>")
        .append("<th>transport</th><th>p50</th><th>p90</th><th>p99</th><th>mean</th>")
        .append("<th>calls/s</th><th>MB/s</th><th>errors</th></tr>\n");
    JsonArray x = new JsonArray();
    JsonObject rps = new JsonObject();
    JsonObject p50 = new JsonObject();
    JsonObject p99 = new JsonObject();
    for (String t : transports) {
      rps.add(t, new JsonArray());
      p50.add(t, new JsonArray());
      p99.add(t, new JsonArray());
    }
    for (JsonElement e : results) {
      JsonObject res = e.getAsJsonObject();
      long size = res.get("payloadBytes").getAsLong();
      x.add(size);
      for (String t : transports) {
        JsonObject c = res.getAsJsonObject("transports").getAsJsonObject(t);
        b.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td class=\"n\">%s</td>"
            + "<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
            + "<td class=\"n\">%.1f</td><td class=\"n\">%.1f</td><td class=\"n\">%d</td></tr>%n",
            esc(CompareCommand.sizeText(size)), esc(t),
            esc(Report.duration(c.get("p50").getAsLong())),
            esc(Report.duration(c.get("p90").getAsLong())),
            esc(Report.duration(c.get("p99").getAsLong())),
            esc(Report.duration(c.get("mean").getAsLong())), c.get("rps").getAsDouble(),
            c.get("requestMBps").getAsDouble(), c.get("errors").getAsLong()));
        rps.getAsJsonArray(t).add(c.get("rps"));
        p50.getAsJsonArray(t).add(c.get("p50"));
        p99.getAsJsonArray(t).add(c.get("p99"));
      }
      JsonObject ratios = res.getAsJsonObject("ratios");
      for (String k : ratios.keySet()) {
        b.append(String.format(Locale.ROOT, "<tr><td></td><td colspan=\"8\" class=\"note\">"
            + "%s = %.2fx</td></tr>%n", esc(k), ratios.get(k).getAsDouble()));
      }
    }
    b.append("</table></section>\n<section id=\"charts\"><h2>Against payload size</h2>")
        .append("<div class=\"charts\"><div data-chart=\"throughput\"></div>")
        .append("<div data-chart=\"p50\"></div><div data-chart=\"p99\"></div></div></section>\n");
    JsonObject charts = new JsonObject();
    charts.add("throughput", lines("Throughput (calls/s)", x, rps, "", false));
    charts.add("p50", lines("p50 latency", x, p50, "ns", true));
    charts.add("p99", lines("p99 latency", x, p99, "ns", true));
    return page("grpc-load compare", b.toString(), charts);
  }

  private static JsonObject lines(String title, JsonArray x, JsonObject byTransport,
      String unit, boolean logY) {
    JsonObject c = new JsonObject();
    c.addProperty("kind", "line");
    c.addProperty("title", title);
    c.add("x", x);
    c.addProperty("logX", true);
    c.addProperty("logY", logY);
    c.addProperty("xUnit", "bytes");
    c.addProperty("unit", unit);
    c.addProperty("xTitle", "payload size (log scale)");
    c.addProperty("yTitle", title + (logY ? " (log scale)" : ""));
    JsonArray series = new JsonArray();
    for (String t : byTransport.keySet()) {
      series.add(series(t, byTransport.getAsJsonArray(t)));
    }
    c.add("series", series);
    return c;
  }

  private static JsonObject series(String name, JsonArray values) {
    JsonObject s = new JsonObject();
    s.addProperty("name", name);
    s.add("values", values);
    return s;
  }

  private static JsonObject bar(String title, JsonArray labels, JsonArray values, String unit,
      boolean logY, String xTitle, String yTitle) {
    JsonObject c = new JsonObject();
    c.addProperty("kind", "bar");
    c.addProperty("title", title);
    c.add("labels", labels);
    c.add("values", values);
    c.addProperty("unit", unit);
    c.addProperty("logY", logY);
    c.addProperty("xTitle", xTitle);
    c.addProperty("yTitle", yTitle);
    return c;
  }

  private static void row(StringBuilder b, String k, String v) {
    b.append("<tr><th>").append(esc(k)).append("</th><td>").append(esc(v))
        .append("</td></tr>\n");
  }

  static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\"", "&quot;");
  }

  private static String page(String title, String body, JsonObject charts) {
    JsonObject data = new JsonObject();
    data.add("charts", charts);
    // The first script records errors (even a syntax error in the chart script) on <html>.
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>"
        + esc(title) + "</title>\n<script>window.grpcLoadErrors=[];window.addEventListener("
        + "'error',function(e){window.grpcLoadErrors.push(String(e.message));document."
        + "documentElement.setAttribute('data-js-errors',window.grpcLoadErrors.join(' | '));});"
        + "</script>\n<style>" + STYLE + "</style></head>\n<body>\n" + body
        + "<noscript><p class=\"note\">The charts are drawn by JavaScript; the tables hold the "
        + "same figures.</p></noscript>\n<script type=\"application/json\" id=\"report-data\">"
        + GSON.toJson(data) + "</script>\n<script>\n" + chartScript() + "</script>\n"
        + "</body></html>\n";
  }

  private static String chartScript() {
    try (InputStream in = HtmlReport.class.getResourceAsStream("charts.js")) {
      if (in == null) {
        throw new IllegalStateException("charts.js missing from the classpath");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
