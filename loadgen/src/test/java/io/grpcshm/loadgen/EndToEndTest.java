package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpcshm.TransportPath;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** grpc-load against an in-test grpc-shm server; descriptors come from server reflection. */
class EndToEndTest extends WithTestServer {
  private static JsonObject runJson(String... args) {
    Cli r = Cli.run(args);
    assertEquals(0, r.exitCode(), r.err());
    return JsonParser.parseString(r.out()).getAsJsonObject();
  }

  @Test
  void sharedMemoryAndTcpPathsAreReported() {
    for (String transport : List.of("shm", "tcp")) {
      JsonObject o = runJson("--call", TestServer.CALL, "-d", "{\"name\":\"x\"}", "-n", "60",
          "-c", "3", "--connections", "2", "--transport", transport, "-O", "json",
          server.target());
      assertEquals(60, o.get("count").getAsLong());
      String expected = transport.equals("shm") ? TransportPath.SHARED_MEMORY.name()
          : TransportPath.TCP.name();
      JsonObject paths = o.getAsJsonObject("transportPathDistribution");
      assertEquals(1, paths.size(), paths.toString());
      assertEquals(60, paths.get(expected).getAsLong(), paths.toString());
      assertEquals(60, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
      assertEquals("reflection", o.getAsJsonObject("options").get("descriptorSource")
          .getAsString());
    }
    assertTrue(server.serverPaths.get(TransportPath.SHARED_MEMORY).get() >= 60);
    assertTrue(server.serverPaths.get(TransportPath.TCP).get() >= 60);
  }

  @Test
  void messageSizeLimitsFailTheCallsThatExceedThem() {
    String big = "{\"name\":\"" + "x".repeat(2000) + "\"}";
    for (String transport : List.of("shm", "tcp")) {
      JsonObject send = runJson("--call", TestServer.CALL, "-d", big, "-n", "6", "-c", "2",
          "--transport", transport, "--max-send-message-size", "1KB", "-O", "json",
          server.target());
      // grpc-java fails a client-side oversize send as CANCELLED ("Failed to stream message",
      // caused by RESOURCE_EXHAUSTED) before anything is sent, on every transport.
      assertEquals("{\"CANCELLED\":6}",
          send.getAsJsonObject("statusCodeDistribution").toString(), transport);
      assertEquals("{\"rpc error: code = CANCELLED desc = Failed to stream message\":6}",
          send.getAsJsonObject("errorDistribution").toString(), transport);
      assertEquals(1000, send.getAsJsonObject("options").get("maxSendMessageSize").getAsInt());
      JsonObject recv = runJson("--call", TestServer.CALL, "-d", big, "-n", "6", "-c", "2",
          "--transport", transport, "--max-recv-message-size", "1 KiB", "-O", "json",
          server.target());
      assertEquals("{\"RESOURCE_EXHAUSTED\":6}",
          recv.getAsJsonObject("statusCodeDistribution").toString(),
          transport + " " + recv.getAsJsonObject("errorDistribution"));
      JsonObject fits = runJson("--call", TestServer.CALL, "-d", big, "-n", "6", "-c", "2",
          "--transport", transport, "--max-send-message-size", "4KiB",
          "--max-recv-message-size", "4KiB", "-O", "json", server.target());
      assertEquals(6, fits.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    }
  }

  @Test
  void autoModePicksSharedMemoryInSummary() {
    Cli r = Cli.run("--call", TestServer.CALL, "-n", "20", "-c", "2", server.target());
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.out().contains("[SHARED_MEMORY]\t20 calls"), r.out());
    assertTrue(r.out().contains("[OK]\t20 responses"), r.out());
    assertTrue(r.out().contains("99.99 % in"), r.out());
  }

  @Test
  void templatesArraysAndMetadataPerRequest() {
    server.names.clear();
    server.tags.clear();
    JsonObject o = runJson("--call", TestServer.CALL, "-n", "40", "-c", "4", "-O", "json",
        "-d", "[{\"name\":\"a{{.RequestNumber}}\",\"number\":{{randomInt 1 9}}},"
            + "{\"name\":\"b{{.RequestNumber}}\",\"failCode\":5}]",
        "-m", "{\"x-tag\":\"w{{.WorkerID}}\"}", server.target());
    assertEquals(40, o.get("count").getAsLong());
    assertEquals(20, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    assertEquals(20, o.getAsJsonObject("statusCodeDistribution").get("NOT_FOUND").getAsLong());
    JsonObject errors = o.getAsJsonObject("errorDistribution");
    assertEquals(20, errors.get("rpc error: code = NOT_FOUND desc = asked to fail").getAsLong(),
        errors.toString());
    Set<String> names = new HashSet<>(server.names);
    for (int i = 0; i < 40; i++) {
      assertTrue(names.contains((i % 2 == 0 ? "a" : "b") + i), "missing request " + i);
    }
    assertEquals(Set.of("w0", "w1", "w2", "w3"), new HashSet<>(server.tags));
  }

  @Test
  void dataFileAndProtoset(@TempDir Path dir) throws Exception {
    Path data = dir.resolve("data.json");
    Files.writeString(data, "{\"name\":\"from-file\"}");
    Path protoset = dir.resolve("test.protoset");
    Files.write(protoset, com.google.protobuf.DescriptorProtos.FileDescriptorSet.newBuilder()
        .addFile(io.grpcshm.loadgen.testing.LoadgenTest.getDescriptor().toProto()).build()
        .toByteArray());
    server.names.clear();
    JsonObject o = runJson("--call", TestServer.CALL, "-D", data.toString(), "--protoset",
        protoset.toString(), "-n", "5", "-c", "1", "-O", "json", server.target());
    assertEquals(5, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    assertEquals("protoset", o.getAsJsonObject("options").get("descriptorSource").getAsString());
    assertTrue(server.names.stream().allMatch("from-file"::equals));
  }

  @Test
  void unknownMethodAndBadDataAreReported() {
    Cli r = Cli.run("--call", "loadgen.test.Greeter/Nope", "-n", "1", "-c", "1",
        server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("has no method Nope"), r.err());
    r = Cli.run("--call", TestServer.CALL, "-d", "{\"nosuch\":1}", "-n", "1", "-c", "1",
        server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("does not match loadgen.test.HelloRequest"), r.err());
    r = Cli.run("--call", "no.Such/Service", "-n", "1", "-c", "1", server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("not found"), r.err());
  }

  @Test
  void deadlinesShowAsErrors() {
    JsonObject o = runJson("--call", TestServer.CALL, "-d", "{\"sleepMicros\":300000}", "-t",
        "50ms", "-n", "2", "-c", "2", "-O", "json", server.target());
    assertEquals(2, o.getAsJsonObject("statusCodeDistribution").get("DEADLINE_EXCEEDED")
        .getAsLong());
  }

  @Test
  void maxDurationStopsAnNRun() {
    Cli r = Cli.run("--call", TestServer.CALL, "-d", "{\"sleepMicros\":20000}", "-n", "100000",
        "-c", "2", "-x", "300ms", "-O", "json", server.target());
    assertEquals(0, r.exitCode(), r.err());
    JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
    long count = o.get("count").getAsLong();
    assertTrue(count > 2 && count < 100, "count " + count);
    assertTrue(o.get("total").getAsLong() < 2_000_000_000L);
  }

  /** --proto runs protoc; the build's own protoc binary (target/protoc-plugins) stands in. */
  @Test
  void protoSourceThroughProtoc() throws Exception {
    Path plugins = Path.of("target/protoc-plugins");
    Assumptions.assumeTrue(Files.isDirectory(plugins), "no protoc in target/protoc-plugins");
    Path protoc;
    try (var files = Files.list(plugins)) {
      protoc = files.filter(f -> f.getFileName().toString().startsWith("protoc-")
          && Files.isExecutable(f)).findFirst().orElse(null);
    }
    Assumptions.assumeTrue(protoc != null, "no executable protoc");
    JsonObject o = runJson("--call", TestServer.CALL, "--proto",
        "src/test/proto/loadgen_test.proto", "-i", "src/test/proto", "--protoc",
        protoc.toString(), "-n", "3", "-c", "1", "-O", "json", server.target());
    assertEquals(3, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    assertEquals("proto", o.getAsJsonObject("options").get("descriptorSource").getAsString());
    Cli r = Cli.run("--call", TestServer.CALL, "--proto", "src/test/proto/loadgen_test.proto",
        "--protoc", "/nonexistent/protoc", "-n", "1", "-c", "1", server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("--proto needs a protoc executable"), r.err());
  }
}
