package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Structure of summary, JSON and CSV, all written by one run with --output-dir. */
class OutputFormatsTest extends WithTestServer {
  @Test
  void summaryJsonAndCsvInOneRun(@TempDir Path dir) throws Exception {
    Cli r = Cli.run("--call", TestServer.CALL, "-d",
        "[{\"name\":\"ok\"},{\"name\":\"bad, \\\"quoted\\\"\",\"failCode\":3}]", "-n", "30",
        "-c", "3", "--name", "formats", "-O", "summary,json,csv", "--output-dir",
        dir.toString(), server.target());
    assertEquals(0, r.exitCode(), r.err());
    assertEquals("", r.out());

    String summary = Files.readString(dir.resolve("summary.txt"));
    for (String heading : List.of("Summary:", "  Name:\tformats", "  Count:\t30", "  Total:",
        "  Slowest:", "  Fastest:", "  Average:", "  Requests/sec:", "Response time histogram:",
        "Latency distribution:", "  10 % in", "  99.9 % in", "  99.99 % in",
        "Status code distribution:", "  [OK]\t15 responses", "  [INVALID_ARGUMENT]\t15 responses",
        "Error distribution:", "Transport path distribution:")) {
      assertTrue(summary.contains(heading), heading + " missing in\n" + summary);
    }

    JsonObject o = JsonParser.parseString(Files.readString(dir.resolve("report.json")))
        .getAsJsonObject();
    assertEquals(30, o.get("count").getAsLong());
    for (String key : List.of("date", "total", "average", "fastest", "slowest", "rps")) {
      assertTrue(o.has(key), key);
    }
    assertTrue(o.get("fastest").getAsLong() <= o.get("average").getAsLong());
    assertTrue(o.get("average").getAsLong() <= o.get("slowest").getAsLong());
    JsonArray hist = o.getAsJsonArray("histogram");
    assertEquals(11, hist.size());
    long inBuckets = 0;
    for (JsonElement b : hist) {
      inBuckets += b.getAsJsonObject().get("count").getAsLong();
    }
    assertEquals(15, inBuckets); // the OK calls: as ghz, failed ones are not timed
    JsonArray dist = o.getAsJsonArray("latencyDistribution");
    assertEquals(Report.PERCENTILES.length, dist.size());
    long previous = 0;
    for (JsonElement d : dist) {
      long latency = d.getAsJsonObject().get("latency").getAsLong();
      assertTrue(latency >= previous);
      previous = latency;
    }
    assertEquals(99.99, dist.get(dist.size() - 1).getAsJsonObject().get("percentage")
        .getAsDouble());
    assertFalse(o.getAsJsonObject("coordinatedOmission").get("corrected").getAsBoolean());
    assertEquals(15, o.getAsJsonObject("statusCodeDistribution").get("INVALID_ARGUMENT")
        .getAsLong());
    assertEquals(15, o.getAsJsonObject("errorDistribution")
        .get("rpc error: code = INVALID_ARGUMENT desc = asked to fail").getAsLong());
    assertEquals("formats", o.getAsJsonObject("options").get("name").getAsString());

    List<String> csv = Files.readAllLines(dir.resolve("report.csv"));
    assertEquals(Report.CSV_HEADER, csv.get(0));
    assertEquals(31, csv.size());
    for (int i = 1; i < csv.size(); i++) {
      String[] cols = csv.get(i).split(",", -1);
      assertEquals(Long.toString(i - 1), cols[0]);
      assertTrue(Double.parseDouble(cols[3]) > 0);
      assertEquals(i % 2 == 1 ? "OK" : "INVALID_ARGUMENT", cols[4]);
      assertEquals("SHARED_MEMORY", cols[cols.length - 1]);
    }
    assertEquals("", csv.get(1).split(",", -1)[5]);
  }

  @Test
  void singleFormatToFile(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("out.csv");
    Cli r = Cli.run("--call", TestServer.CALL, "-n", "4", "-c", "1", "-O", "csv", "-o",
        file.toString(), server.target());
    assertEquals(0, r.exitCode(), r.err());
    List<String> csv = Files.readAllLines(file);
    assertEquals(Report.CSV_HEADER, csv.get(0));
    assertEquals(5, csv.size());
  }

  @Test
  void noProgressBarWhenPiped() {
    assertFalse(Progress.onTerminal());
    Cli r = Cli.run("--call", TestServer.CALL, "-n", "4", "-c", "1", server.target());
    assertFalse(r.err().contains("\r"));
  }

  @Test
  void csvFieldsAreQuoted() {
    assertEquals("\"a, \"\"b\"\"\"", Report.csvField("a, \"b\""));
    assertEquals("plain", Report.csvField("plain"));
  }
}
