package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpcshm.loadgen.testing.HelloRequest;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --skipFirst and binary data (-b from stdin, -B from a file). */
class DataAndSkipTest extends WithTestServer {
  @BeforeEach
  void clear() {
    server.names.clear();
    server.collected.clear();
  }

  private static JsonObject json(Cli r) {
    assertEquals(0, r.exitCode(), r.err());
    return JsonParser.parseString(r.out()).getAsJsonObject();
  }

  static byte[] delimited(String... names) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String n : names) {
      HelloRequest.newBuilder().setName(n).build().writeDelimitedTo(out);
    }
    return out.toByteArray();
  }

  @Test
  void skipFirstLeavesTheFirstResponsesOut(@TempDir Path dir) throws Exception {
    // One worker: responses arrive in request order, so the skipped ones are 0..9.
    Cli r = Cli.run("--call", TestServer.CALL, "-d", "{\"name\":\"n{{.RequestNumber}}\"}",
        "-n", "30", "-c", "1", "--skipFirst", "10", "-O", "json,csv,prometheus,summary",
        "--output-dir", dir.toString(), server.target());
    assertEquals(0, r.exitCode(), r.err());
    JsonObject o = JsonParser.parseString(Files.readString(dir.resolve("report.json")))
        .getAsJsonObject();
    assertEquals(20, o.get("count").getAsLong());
    assertEquals(10, o.get("skipped").getAsLong());
    assertEquals(20, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    assertEquals(10, o.getAsJsonObject("options").get("skipFirst").getAsLong());
    List<String> csv = Files.readAllLines(dir.resolve("report.csv"));
    assertEquals(21, csv.size());
    assertTrue(csv.get(1).startsWith("10,"), csv.get(1));
    assertTrue(csv.get(20).startsWith("29,"), csv.get(20));
    PrometheusText prom = PrometheusText.parse(Files.readString(dir.resolve("report.prom")));
    assertEquals(10, prom.value("grpc_load_skipped_total", null, null));
    assertEquals(20, prom.value("grpc_load_latency_seconds_count", null, null));
    assertEquals(30, server.names.size(), "all 30 calls were made");
    String summary = Files.readString(dir.resolve("summary.txt"));
    assertTrue(summary.contains("  Count:\t20\n"), summary);
    assertTrue(summary.contains("  Skipped:\t10 (first responses, --skipFirst)"), summary);
  }

  @Test
  void skipFirstInADurationRun() {
    JsonObject o = json(Cli.run("--call", TestServer.CALL, "-z", "300ms", "-c", "2",
        "--skipFirst", "5", "-O", "json", server.target()));
    assertEquals(5, o.get("skipped").getAsLong());
    assertEquals(server.names.size() - 5, o.get("count").getAsLong());
  }

  @Test
  void binaryFileWithOneMessage(@TempDir Path dir) throws Exception {
    Path bin = dir.resolve("one.bin");
    Files.write(bin, HelloRequest.newBuilder().setName("from-binary").setNumber(7).build()
        .toByteArray());
    JsonObject o = json(Cli.run("--call", TestServer.CALL, "-B", bin.toString(), "-n", "6",
        "-c", "2", "-O", "json", server.target()));
    assertEquals(6, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    assertTrue(o.getAsJsonObject("options").get("binary").getAsBoolean());
    assertEquals(List.of("from-binary"), new ArrayList<>(server.names).stream().distinct()
        .toList());
  }

  @Test
  void binaryFromStdinWithDelimitedMessagesRoundRobin() throws Exception {
    JsonObject o = json(Cli.runWithStdin(delimited("b0", "b1", "b2"), "--call",
        TestServer.CALL, "-b", "-n", "9", "-c", "1", "-O", "json", server.target()));
    assertEquals(9, o.get("count").getAsLong());
    assertEquals(List.of("b0", "b1", "b2", "b0", "b1", "b2", "b0", "b1", "b2"),
        new ArrayList<>(server.names));
  }

  @Test
  void binaryMessagesAsAClientStream() throws Exception {
    JsonObject o = json(Cli.runWithStdin(delimited("x", "y"), "--call",
        "loadgen.test.Greeter/CollectHellos", "-b", "-d", "@", "-n", "3", "-c", "1", "-O",
        "json", server.target()));
    assertEquals(3, o.get("count").getAsLong());
    assertEquals(List.of("x,y", "x,y", "x,y"), new ArrayList<>(server.collected));
  }

  @Test
  void badBinaryDataIsRefused(@TempDir Path dir) throws Exception {
    Path bin = dir.resolve("bad.bin");
    Files.write(bin, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff});
    Cli r = Cli.run("--call", TestServer.CALL, "-B", bin.toString(), "-n", "1", "-c", "1",
        server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("binary data is not a serialized loadgen.test.HelloRequest"),
        r.err());
    r = Cli.runWithStdin(new byte[0], "--call", TestServer.CALL, "-b", "-n", "1", "-c", "1",
        server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("binary data is empty"), r.err());
  }
}
