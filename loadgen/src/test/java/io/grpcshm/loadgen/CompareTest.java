package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CompareTest {
  @Test
  void hostedEchoOverFourTransportsAsJson() {
    Cli r = Cli.run("compare", "-n", "5", "--rounds", "2", "--warmup-rounds", "0", "--sizes",
        "100,4KiB", "-O", "json");
    assertEquals(0, r.exitCode(), r.err());
    JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
    assertTrue(o.get("hostedInThisJvm").getAsBoolean());
    JsonArray results = o.getAsJsonArray("results");
    assertEquals(2, results.size());
    assertEquals(4096, results.get(1).getAsJsonObject().get("payloadBytes").getAsLong());
    for (var e : results) {
      JsonObject t = e.getAsJsonObject().getAsJsonObject("transports");
      assertEquals(10, t.getAsJsonObject("shm").get("count").getAsLong());
      assertEquals(10, t.getAsJsonObject("shm").getAsJsonObject("transportPaths")
          .get("SHARED_MEMORY").getAsLong());
      assertEquals(10, t.getAsJsonObject("tcp").getAsJsonObject("transportPaths")
          .get("TCP").getAsLong());
      assertEquals(10, t.getAsJsonObject("uds").get("count").getAsLong());
      assertEquals(0, t.getAsJsonObject("uds").get("errors").getAsLong());
      assertEquals(10, t.getAsJsonObject("inproc").get("count").getAsLong());
      assertEquals(0, t.getAsJsonObject("inproc").get("errors").getAsLong());
      JsonObject ratios = e.getAsJsonObject().getAsJsonObject("ratios");
      assertTrue(ratios.get("tcpP50OverShmP50").getAsDouble() > 0);
      assertTrue(ratios.get("shmP50OverInprocP50").getAsDouble() > 0);
      assertTrue(ratios.get("udsP50OverShmP50").getAsDouble() > 0);
    }
  }

  @Test
  void severalFormatsIncludingHtml(@TempDir Path dir) throws Exception {
    Cli r = Cli.run("compare", "-n", "3", "--rounds", "1", "--warmup-rounds", "0", "--sizes",
        "100,1KiB", "--transports", "shm,tcp", "-O", "table,json,html", "--output-dir",
        dir.toString());
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(Files.readString(dir.resolve("compare.txt")).contains("p50 tcp/shm"));
    JsonObject json = JsonParser.parseString(Files.readString(dir.resolve("compare.json")))
        .getAsJsonObject();
    String html = Files.readString(dir.resolve("compare.html"));
    HtmlAndPrometheusTest.assertSelfContained(html);
    for (String chart : List.of("throughput", "p50", "p99")) {
      assertTrue(html.contains("data-chart=\"" + chart + "\""), chart);
    }
    JsonObject charts = HtmlAndPrometheusTest.chartData(html);
    JsonObject p50 = charts.getAsJsonObject("p50");
    assertEquals(2, p50.getAsJsonArray("x").size());
    assertEquals(1024, p50.getAsJsonArray("x").get(1).getAsLong());
    JsonArray series = p50.getAsJsonArray("series");
    assertEquals(2, series.size());
    assertEquals("shm", series.get(0).getAsJsonObject().get("name").getAsString());
    assertEquals(json.getAsJsonArray("results").get(1).getAsJsonObject()
        .getAsJsonObject("transports").getAsJsonObject("tcp").get("p50").getAsLong(),
        series.get(1).getAsJsonObject().getAsJsonArray("values").get(1).getAsLong());
    assertTrue(charts.getAsJsonObject("throughput").getAsJsonArray("series").get(0)
        .getAsJsonObject().getAsJsonArray("values").get(0).getAsDouble() > 0);
    assertTrue(html.contains("<td>1 KiB</td><td>tcp</td>"), "result table rows");
    Cli bad = Cli.run("compare", "-O", "json,html");
    assertEquals(2, bad.exitCode());
    assertTrue(bad.err().contains("need --output-dir"), bad.err());
  }

  @Test
  void refusesInprocAndUdsForRemoteTargetsAndUnknownTransports() {
    Cli r = Cli.run("compare", "--transports", "shm,inproc", "localhost:1");
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("inproc needs the service in this JVM"), r.err());
    Cli u = Cli.run("compare", "--transports", "uds", "localhost:1");
    assertEquals(2, u.exitCode());
    assertTrue(u.err().contains("uds needs the service in this JVM"), u.err());
    Cli x = Cli.run("compare", "--transports", "shm,quic");
    assertEquals(2, x.exitCode());
    assertTrue(x.err().contains("unknown transport 'quic'"), x.err());
  }
}
