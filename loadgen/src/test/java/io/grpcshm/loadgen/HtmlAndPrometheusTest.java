package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The html and prometheus formats: structure, figures that agree with the JSON report. */
class HtmlAndPrometheusTest extends WithTestServer {
  /** The JSON the page's charts are drawn from. */
  static JsonObject chartData(String html) {
    Matcher m = Pattern.compile("<script type=\"application/json\" id=\"report-data\">(.*?)"
        + "</script>", Pattern.DOTALL).matcher(html);
    assertTrue(m.find(), "no report-data script");
    return JsonParser.parseString(m.group(1)).getAsJsonObject().getAsJsonObject("charts");
  }

  static long sum(JsonArray a) {
    long s = 0;
    for (JsonElement e : a) {
      s += e.getAsLong();
    }
    return s;
  }

  /** Nothing is fetched: no src/href attributes, no stylesheet links, no imports. */
  static void assertSelfContained(String html) {
    assertTrue(html.startsWith("<!DOCTYPE html>"));
    for (String external : List.of(" src=", " href=", "<link", "@import", "url(")) {
      assertFalse(html.contains(external), external + " in a self-contained page");
    }
  }

  @Test
  void htmlPrometheusAndJsonAgree(@TempDir Path dir) throws Exception {
    Cli r = Cli.run("--call", TestServer.CALL, "-d",
        "[{\"name\":\"ok\"},{\"name\":\"<b>&\",\"failCode\":5}]", "-n", "40", "-c", "2",
        "--name", "page \"one\"", "-O", "html,prometheus,json", "--output-dir", dir.toString(),
        server.target());
    assertEquals(0, r.exitCode(), r.err());
    JsonObject json = JsonParser.parseString(Files.readString(dir.resolve("report.json")))
        .getAsJsonObject();
    long count = json.get("count").getAsLong();
    assertEquals(40, count);
    long timed = 20; // as ghz, failed calls are not timed (no --count-errors)

    String html = Files.readString(dir.resolve("report.html"));
    assertSelfContained(html);
    for (String part : List.of("id=\"summary\"", "id=\"latency\"", "id=\"histograms\"",
        "id=\"status\"", "id=\"options\"", "data-chart=\"percentiles\"",
        "data-chart=\"histogram\"", "data-chart=\"logHistogram\"", "<th>Count</th><td>40</td>",
        "<th>NOT_FOUND</th><td>20 responses</td>", "grpc-load report: page &quot;one&quot;",
        "<td>p99.99</td>")) {
      assertTrue(html.contains(part), part + " missing");
    }
    assertFalse(html.contains("<b>&"), "data must be escaped in the page");
    JsonObject charts = chartData(html);
    assertEquals(Report.PERCENTILES.length, charts.getAsJsonObject("percentiles")
        .getAsJsonArray("values").size());
    assertEquals(timed, sum(charts.getAsJsonObject("histogram").getAsJsonArray("values")));
    JsonObject log = charts.getAsJsonObject("logHistogram");
    assertTrue(log.get("logY").getAsBoolean());
    assertEquals(timed, sum(log.getAsJsonArray("values")));
    assertEquals(log.getAsJsonArray("labels").size(), log.getAsJsonArray("values").size());

    PrometheusText prom = PrometheusText.parse(Files.readString(dir.resolve("report.prom")));
    assertEquals("histogram", prom.types.get("grpc_load_latency_seconds"));
    assertEquals("summary", prom.types.get("grpc_load_latency_quantiles_seconds"));
    assertEquals(20, prom.value("grpc_load_requests_total", "code", "OK"));
    assertEquals(20, prom.value("grpc_load_requests_total", "code", "NOT_FOUND"));
    assertEquals(20, prom.value("grpc_load_errors_total", null, null));
    assertEquals(40, prom.value("grpc_load_transport_path_total", "path", "SHARED_MEMORY"));
    assertEquals(timed, prom.value("grpc_load_latency_seconds_count", null, null));
    assertEquals(json.get("rps").getAsDouble(),
        prom.value("grpc_load_requests_per_second", null, null), 1e-6);
    assertEquals(json.get("average").getAsLong() / 1e9,
        prom.value("grpc_load_average_seconds", null, null), 1e-6);
    for (PrometheusText.Sample s : prom.samples) {
      assertEquals("page \\\"one\\\"", s.labels().get("name"), s.toString());
      assertEquals(TestServer.CALL, s.labels().get("call"));
    }
    double p99 = prom.value("grpc_load_latency_quantiles_seconds", "quantile", "0.99");
    assertEquals(json.getAsJsonArray("latencyDistribution").get(6).getAsJsonObject()
        .get("latency").getAsLong() / 1e9, p99, 1e-9);
  }

  @Test
  void prometheusBucketsAreCumulative() {
    org.HdrHistogram.Histogram h = new org.HdrHistogram.Histogram(3);
    h.recordValue(5_000);          // 5 µs: first bucket (10 µs)
    h.recordValue(30_000_000);     // 30 ms
    h.recordValue(70_000_000_000L); // 70 s: only +Inf
    long[] c = PrometheusReport.cumulative(h);
    assertEquals(1, c[0]);
    assertEquals(2, c[c.length - 1]);
    assertEquals("0.000025", PrometheusReport.format(2.5e-5));
    assertEquals("+Inf", PrometheusReport.format(Double.POSITIVE_INFINITY));
  }

  @Test
  void theValidatorRejectsBrokenExpositions() {
    assertThrows(AssertionError.class, () -> PrometheusText.parse("x 1\n"));
    assertThrows(AssertionError.class, () -> PrometheusText.parse(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"));
    assertThrows(AssertionError.class, () -> PrometheusText.parse(
        "# TYPE g gauge\ng{a-b=\"x\"} 1\n"));
  }

  @Test
  void logBuckets() {
    assertEquals(15, HtmlReport.logBucket(1_000)); // 1 µs = 10^3 ns, 5 per decade
    assertEquals(15, HtmlReport.logBucket(1_500));
    assertEquals(16, HtmlReport.logBucket(1_600)); // 10^(16/5) ≈ 1585
  }
}
