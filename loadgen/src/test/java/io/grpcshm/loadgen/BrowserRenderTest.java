package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTML pages in a real browser (Debian's chromium, headless): the chart script ran without
 * errors and drew SVG charts with data points. Skipped when /usr/bin/chromium is missing.
 */
class BrowserRenderTest {
  /** Per test (not per class), so each one is reported as skipped, with the reason. */
  @BeforeEach
  void chromium() {
    HeadlessChromium.assumeInstalled();
  }

  static String attr(String dom, String name) {
    Matcher m = Pattern.compile("<html[^>]*\\s" + name + "=\"([^\"]*)\"").matcher(dom);
    return m.find() ? m.group(1) : null;
  }

  static int count(String dom, String regex) {
    Matcher m = Pattern.compile(regex).matcher(dom);
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  /** Every chart host holds an SVG whose data-points (non-zero points drawn) is positive. */
  static void assertRendered(String dom, int charts) {
    assertEquals(null, attr(dom, "data-js-errors"), "script errors");
    assertEquals("ok", attr(dom, "data-render"));
    assertEquals(Integer.toString(charts), attr(dom, "data-charts-rendered"));
    Matcher m = Pattern.compile("<svg[^>]*data-points=\"(\\d+)\"").matcher(dom);
    int svgs = 0;
    while (m.find()) {
      assertTrue(Integer.parseInt(m.group(1)) > 0, "an empty chart");
      svgs++;
    }
    assertEquals(charts, svgs);
  }

  @Test
  void runPageRendersItsCharts(@TempDir Path dir) throws Exception {
    Path page = dir.resolve("run.html");
    try (TestServer server = new TestServer()) {
      Cli r = Cli.run("--call", TestServer.CALL, "-d", "{\"name\":\"b\"}", "--load-schedule",
          "step", "--load-start", "100", "--load-step", "100", "--load-end", "200",
          "--load-step-duration", "300ms", "-z", "900ms", "-c", "2", "-O", "html", "-o",
          page.toString(), server.target());
      assertEquals(0, r.exitCode(), r.err());
    }
    String dom = HeadlessChromium.dumpDom(page);
    // percentiles, ghz histogram, log histogram, load steps
    assertRendered(dom, 4);
    assertEquals(9, barsIn(dom, "percentiles"));
    assertTrue(barsIn(dom, "logHistogram") > 0);
    assertEquals(4, pointsIn(dom, "loadSteps"), "target and achieved for 2 steps");
  }

  @Test
  void comparePageRendersOneSeriesPerTransport(@TempDir Path dir) throws Exception {
    Path page = dir.resolve("compare.html");
    Cli r = Cli.run("compare", "-n", "4", "--rounds", "1", "--warmup-rounds", "0", "--sizes",
        "100,4KiB,64KiB", "-O", "html", "-o", page.toString());
    assertEquals(0, r.exitCode(), r.err());
    String html = Files.readString(page);
    HtmlAndPrometheusTest.assertSelfContained(html);
    String dom = HeadlessChromium.dumpDom(page);
    assertRendered(dom, 3);
    for (String chart : new String[] {"throughput", "p50", "p99"}) {
      assertEquals(12, pointsIn(dom, chart), chart + ": 4 transports x 3 sizes");
      String svg = chartSvg(dom, chart);
      for (String t : new String[] {"shm", "tcp", "uds", "inproc"}) {
        assertTrue(svg.contains("data-series=\"" + t + "\""), chart + " lacks " + t);
      }
    }
  }

  /** The checks above can fail: a chart without data is reported as a script error. */
  @Test
  void brokenChartIsReported(@TempDir Path dir) throws Exception {
    Path page = dir.resolve("broken.html");
    String html = HtmlReport.compare(com.google.gson.JsonParser.parseString("{\"call\":\"a.B/C\","
        + "\"target\":\"t\",\"hostedInThisJvm\":false,\"rounds\":1,\"callsPerCellPerRound\":1,"
        + "\"concurrency\":1,\"results\":[{\"payloadBytes\":100,\"ratios\":{},\"transports\":"
        + "{\"tcp\":{\"p50\":1000,\"p90\":2000,\"p99\":3000,\"mean\":1500,\"rps\":9.5,"
        + "\"requestMBps\":0.001,\"errors\":0}}}]}").getAsJsonObject());
    Files.writeString(page, html.replace("data-chart=\"p99\"", "data-chart=\"nosuch\""));
    String dom = HeadlessChromium.dumpDom(page);
    assertEquals("error", attr(dom, "data-render"));
    assertEquals("2", attr(dom, "data-charts-rendered"));
    String errors = attr(dom, "data-js-errors");
    assertTrue(errors != null && errors.contains("nosuch: no data"), errors);
    assertFalse(errors.contains("p99"), errors);
  }

  private static String chartSvg(String dom, String chart) {
    Matcher m = Pattern.compile("data-chart=\"" + chart + "\"[^>]*>(<svg[\\s\\S]*?</svg>)")
        .matcher(dom);
    assertTrue(m.find(), "no svg drawn for " + chart);
    return m.group(1);
  }

  private static int barsIn(String dom, String chart) {
    return count(chartSvg(dom, chart), "<rect [^>]*class=\"bar\"");
  }

  private static int pointsIn(String dom, String chart) {
    return count(chartSvg(dom, chart), "<circle [^>]*class=\"point\"");
  }
}
