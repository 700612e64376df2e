package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpcshm.TransportPath;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** Client, server and bidi streaming calls end to end, over shared memory and TCP. */
class StreamingTest extends WithTestServer {
  static final String COLLECT = "loadgen.test.Greeter/CollectHellos";
  static final String SERVER_STREAM = "loadgen.test.Greeter/StreamHellos";
  static final String BIDI = "loadgen.test.Greeter/ChatHellos";
  @BeforeEach
  void clear() {
    server.names.clear();
    server.collected.clear();
    server.streamedIn.set(0);
  }

  private static JsonObject run(String transport, String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.addAll(List.of("-O", "json", "--transport", transport, server.target()));
    Cli r = Cli.run(all.toArray(String[]::new));
    assertEquals(0, r.exitCode(), r.err());
    JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
    String path = transport.equals("shm") ? TransportPath.SHARED_MEMORY.name()
        : TransportPath.TCP.name();
    long count = o.get("count").getAsLong();
    assertEquals(count, o.getAsJsonObject("transportPathDistribution").get(path).getAsLong(),
        o.toString());
    assertEquals(count, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong(),
        o.toString());
    return o;
  }

  private static long sent(JsonObject o) {
    return o.getAsJsonObject("streamMessages").get("sent").getAsLong();
  }

  private static long received(JsonObject o) {
    return o.getAsJsonObject("streamMessages").get("received").getAsLong();
  }

  @ParameterizedTest
  @ValueSource(strings = {"shm", "tcp"})
  void clientStreamSendsTheArray(String transport) {
    JsonObject o = run(transport, "--call", COLLECT, "-d",
        "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]", "-n", "6", "-c", "2");
    assertEquals(6, o.get("count").getAsLong());
    assertEquals(18, sent(o));
    assertEquals(6, received(o));
    assertEquals(List.of("a,b,c"), server.collected.stream().distinct().toList());
    assertEquals(6, server.collected.size());
  }

  @ParameterizedTest
  @ValueSource(strings = {"shm", "tcp"})
  void serverStreamReceivesUntilTheServerEnds(String transport) {
    JsonObject o = run(transport, "--call", SERVER_STREAM, "-d",
        "{\"name\":\"s\",\"number\":5}", "-n", "4", "-c", "2");
    assertEquals(4, sent(o));
    assertEquals(20, received(o));
  }

  @ParameterizedTest
  @ValueSource(strings = {"shm", "tcp"})
  void bidiSendsAndReceivesEveryMessage(String transport) {
    JsonObject o = run(transport, "--call", BIDI, "-d", "[{\"name\":\"x\"},{\"name\":\"y\"}]",
        "--stream-call-count", "5", "-n", "4", "-c", "2");
    assertEquals(20, sent(o));
    assertEquals(20, received(o));
    assertEquals(20, server.streamedIn.get());
  }

  @Test
  void callCountCutsOrCyclesTheArray() {
    run("shm", "--call", COLLECT, "-d", "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]",
        "--stream-call-count", "5", "-n", "2", "-c", "1");
    assertEquals(List.of("a,b,c,a,b", "a,b,c,a,b"), new ArrayList<>(server.collected));
    server.collected.clear();
    run("shm", "--call", COLLECT, "-d", "[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]",
        "--stream-call-count", "2", "-n", "1", "-c", "1");
    assertEquals(List.of("a,b"), new ArrayList<>(server.collected));
  }

  @Test
  void serverStreamEndedByCountOrDurationIsOk() {
    // The server would send 100000 messages, 2 ms apart; the client stops after 3.
    JsonObject o = run("tcp", "--call", SERVER_STREAM, "-d",
        "{\"name\":\"s\",\"number\":100000,\"sleepMicros\":2000}", "--stream-call-count", "3",
        "-n", "2", "-c", "2");
    assertEquals(6, received(o));
    o = run("shm", "--call", SERVER_STREAM, "-d",
        "{\"name\":\"s\",\"number\":100000,\"sleepMicros\":5000}", "--stream-call-duration",
        "200ms", "-n", "2", "-c", "2");
    assertTrue(received(o) >= 2 && received(o) < 200, "received " + received(o));
    assertTrue(o.get("slowest").getAsLong() < 2_000_000_000L, o.toString());
    assertTrue(o.get("fastest").getAsLong() >= 190_000_000L, o.toString());
  }

  @Test
  void intervalSpacesTheSends() {
    JsonObject o = run("shm", "--call", COLLECT, "-d", "[{\"name\":\"a\"},{\"name\":\"b\"},"
        + "{\"name\":\"c\"}]", "--stream-interval", "60ms", "-n", "2", "-c", "2");
    // three sends, two pauses
    assertTrue(o.get("fastest").getAsLong() >= 120_000_000L, o.toString());
    o = run("shm", "--call", BIDI, "-d", "{\"name\":\"a\"}", "--stream-interval", "50ms",
        "--stream-call-count", "100", "--stream-call-duration", "300ms", "-n", "1", "-c", "1");
    assertTrue(sent(o) >= 3 && sent(o) <= 8, "sent " + sent(o));
    assertEquals(sent(o), received(o));
  }

  @Test
  void dynamicMessagesRenderPerSend() {
    run("shm", "--call", COLLECT, "-d", "{\"name\":\"{{randomString 8}}\"}",
        "--stream-call-count", "4", "-n", "1", "-c", "1");
    String[] same = server.collected.poll().split(",");
    assertEquals(1, new HashSet<>(List.of(same)).size(), "rendered once per call");
    run("shm", "--call", COLLECT, "-d", "{\"name\":\"{{randomString 8}}\"}",
        "--stream-call-count", "4", "--stream-dynamic-messages", "-n", "1", "-c", "1");
    String[] fresh = server.collected.poll().split(",");
    assertEquals(4, new HashSet<>(List.of(fresh)).size(), "rendered per message");
  }

  @Test
  void streamFlagsThatDoNotApplyAreRefused() {
    Cli r = Cli.run("--call", TestServer.CALL, "--stream-call-count", "3", "-n", "1", "-c", "1",
        server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("is unary"), r.err());
    r = Cli.run("--call", SERVER_STREAM, "--stream-interval", "10ms", "-n", "1", "-c", "1",
        server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("is server streaming"), r.err());
  }
}
