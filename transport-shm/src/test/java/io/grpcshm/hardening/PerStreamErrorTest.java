package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.internal.frame.FrameLayout;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Errors that belong to one stream (request metadata the gRPC layer cannot accept, metadata over
 * the limits) fail that stream with RST_STREAM and leave the connection and its other streams
 * alone (PROTOCOL.md §8, §12). A hostile peer opens a good stream, a bad one, and another good
 * one after it on the same connection.
 */
class PerStreamErrorTest {
  private Server server;

  @BeforeEach
  void start() throws Exception {
    server = ShmServerBuilder.forPort(0).addService(Hardening.service(new Hardening.Stats()))
        .addStreamTracerFactory(new ServerStreamTracer.Factory() {
          @Override
          public ServerStreamTracer newServerStreamTracer(String method, Metadata headers) {
            if (headers.containsKey(EXPLODE)) {
              throw new IllegalArgumentException("tracer refuses x-explode");
            }
            return new ServerStreamTracer() {};
          }
        })
        .build().start();
  }

  @AfterEach
  void stop() throws Exception {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private static final Metadata.Key<String> EXPLODE =
      Metadata.Key.of("x-explode", Metadata.ASCII_STRING_MARSHALLER);

  /** Request headers with any metadata entries (names and values taken as given). */
  static byte[] requestHeaders(String path, List<String[]> metadata) {
    byte[] p = path.getBytes(StandardCharsets.UTF_8);
    byte[] a = "localhost".getBytes(StandardCharsets.UTF_8);
    int size = 2 + p.length + 2 + a.length + 4;
    for (String[] e : metadata) {
      size += 8 + e[0].length() + e[1].length();
    }
    ByteBuffer b = HostilePeer.le(size);
    b.putShort((short) p.length).put(p).putShort((short) a.length).put(a);
    b.putInt(metadata.size());
    for (String[] e : metadata) {
      byte[] k = e[0].getBytes(StandardCharsets.ISO_8859_1);
      byte[] v = e[1].getBytes(StandardCharsets.ISO_8859_1);
      b.putInt(k.length).put(k).putInt(v.length).put(v);
    }
    return b.array();
  }

  static Status rstStatus(HostilePeer.Frame f) {
    ByteBuffer b = f.le();
    int code = b.getInt();
    byte[] d = new byte[b.getInt()];
    b.get(d);
    return Status.fromCodeValue(code).withDescription(new String(d, StandardCharsets.UTF_8));
  }

  static Map<String, String> metadata(HostilePeer.Frame f) {
    ByteBuffer b = f.le();
    Map<String, String> md = new LinkedHashMap<>();
    int count = b.getInt();
    for (int i = 0; i < count; i++) {
      byte[] k = new byte[b.getInt()];
      b.get(k);
      byte[] v = new byte[b.getInt()];
      b.get(v);
      md.put(new String(k, StandardCharsets.US_ASCII), new String(v, StandardCharsets.US_ASCII));
    }
    return md;
  }

  static HostilePeer.Frame only(List<HostilePeer.Frame> frames, int type, int streamId) {
    List<HostilePeer.Frame> match = frames.stream()
        .filter(f -> f.type() == type && f.streamId() == streamId).toList();
    assertEquals(1, match.size(), FrameLayout.typeName(type) + " on stream " + streamId + ": "
        + describe(frames));
    return match.get(0);
  }

  static String describe(List<HostilePeer.Frame> frames) {
    List<String> out = new ArrayList<>();
    for (HostilePeer.Frame f : frames) {
      out.add(FrameLayout.typeName(f.type()) + "@" + f.streamId()
          + (f.type() == FrameLayout.TYPE_RST_STREAM ? "(" + rstStatus(f) + ")" : ""));
    }
    return out.toString();
  }

  /** Asserts that the stream got its own echo and OK trailers. */
  static void assertEchoed(List<HostilePeer.Frame> frames, int streamId, byte[] request) {
    HostilePeer.Frame data = only(frames, FrameLayout.TYPE_DATA_INLINE, streamId);
    assertArrayEquals(request, Arrays.copyOfRange(data.body(), 5, data.body().length),
        "stream " + streamId + " got its own echo");
    assertEquals("0", metadata(only(frames, FrameLayout.TYPE_TRAILERS, streamId))
        .get("grpc-status"), "stream " + streamId + " ends OK");
  }

  /**
   * Stream 1 (good) is opened, then stream 3 with {@code bad} request headers (and a message the
   * server must ignore), then stream 1's message, then stream 5 (good). Only stream 3 fails, with
   * one RST_STREAM, whose status is returned; the connection stays open.
   */
  private Status badStreamBetweenGoodOnes(byte[] badHeaders) throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      byte[] request1 = Hardening.message(1, 100);
      byte[] request5 = Hardening.message(5, 100);
      p.startCall(1, Hardening.UNARY, Map.of());
      p.write(FrameLayout.TYPE_REQUEST_HEADERS, 0, 3, badHeaders);
      p.sendMessage(3, Hardening.message(3, 10), true);
      p.sendMessage(1, request1, true);
      p.startCall(5, Hardening.UNARY, Map.of("grpc-timeout", "5S"));
      p.sendMessage(5, request5, true);
      List<HostilePeer.Frame> frames = p.readUntil(
          f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 1)
              && HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 5)
              && HostilePeer.has(f, FrameLayout.TYPE_RST_STREAM, 3), 10_000);
      assertEchoed(frames, 1, request1);
      assertEchoed(frames, 5, request5);
      HostilePeer.Frame rst = only(frames, FrameLayout.TYPE_RST_STREAM, 3);
      assertEquals(1, frames.stream().filter(f -> f.streamId() == 3).count(),
          "only the RST_STREAM on the bad stream: " + describe(frames));
      assertFalse(p.hungUpWithin(200), "the connection stays open");
      // ... and keeps serving.
      byte[] request7 = Hardening.message(7, 100);
      p.startCall(7, Hardening.UNARY, Map.of());
      p.sendMessage(7, request7, true);
      assertEchoed(p.readUntil(f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 7), 10_000),
          7, request7);
      return rstStatus(rst);
    }
  }

  private static byte[] unaryWith(Consumer<List<String[]>> metadata) {
    List<String[]> md = new ArrayList<>();
    metadata.accept(md);
    return requestHeaders("/" + Hardening.UNARY.getFullMethodName(), md);
  }

  /**
   * A grpc-timeout that grpc's parser refuses: like grpc-java over Netty (which answers
   * RST_STREAM(INTERNAL_ERROR), read by the client as INTERNAL), the stream fails with INTERNAL.
   */
  @ParameterizedTest
  @ValueSource(strings = {"abc", "99999999999S", "5", "", "1x", "-S"})
  void malformedGrpcTimeoutFailsOnlyItsStream(String timeout) throws Exception {
    Status st = badStreamBetweenGoodOnes(
        unaryWith(md -> md.add(new String[] {"grpc-timeout", timeout})));
    assertEquals(Status.Code.INTERNAL, st.getCode(), st.toString());
    assertTrue(st.getDescription().contains("grpc-timeout"), st.toString());
  }

  /** grpc-java's parser accepts a negative grpc-timeout: the deadline has passed, nothing more. */
  @Test
  void negativeGrpcTimeoutIsAnExpiredDeadline() throws Exception {
    try (HostilePeer p = new HostilePeer(server.getPort())) {
      p.startCall(1, Hardening.HANG, Map.of("grpc-timeout", "-1S"));
      p.sendMessage(1, Hardening.message(1, 10), true);
      List<HostilePeer.Frame> frames = p.readUntil(f -> !f.isEmpty(), 10_000);
      HostilePeer.Frame end = frames.get(0);
      if (end.type() == FrameLayout.TYPE_RST_STREAM) {
        Status st = rstStatus(end);
        assertEquals(Status.Code.CANCELLED, st.getCode(), st.toString());
        assertTrue(st.getDescription().contains("DEADLINE_EXCEEDED"), st.toString());
      } else {
        assertEquals("4", metadata(only(frames, FrameLayout.TYPE_TRAILERS, 1)).get("grpc-status"),
            describe(frames));
      }
      assertFalse(p.hungUpWithin(200), "the connection stays open");
    }
  }

  @Test
  void metadataOverTheSizeLimitFailsOnlyItsStream() throws Exception {
    Status st = badStreamBetweenGoodOnes(unaryWith(md -> md.add(
        new String[] {"x-big", "v".repeat(9000)})));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, st.getCode(), st.toString());
  }

  @Test
  void tooManyMetadataEntriesFailOnlyTheirStream() throws Exception {
    Status st = badStreamBetweenGoodOnes(unaryWith(md -> {
      for (int i = 0; i < 5000; i++) {
        md.add(new String[] {"a", "b"});
      }
    }));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, st.getCode(), st.toString());
  }

  @Test
  void invalidMetadataNameFailsOnlyItsStream() throws Exception {
    Status st = badStreamBetweenGoodOnes(unaryWith(md -> md.add(
        new String[] {"Upper-Case", "v"})));
    assertEquals(Status.Code.INTERNAL, st.getCode(), st.toString());
  }

  /** A path that is not "/" and a method name: UNIMPLEMENTED for that stream, naming the path. */
  @ParameterizedTest
  @ValueSource(strings = {"", "/", "noSlash/Method", "x"})
  void malformedPathFailsOnlyItsStream(String path) throws Exception {
    Status st = badStreamBetweenGoodOnes(requestHeaders(path, List.of()));
    assertEquals(Status.Code.UNIMPLEMENTED, st.getCode(), st.toString());
    assertTrue(st.getDescription().endsWith("malformed method path " + path), st.toString());
  }

  /** Any other refusal by the gRPC layer while it starts the call (here a stream tracer). */
  @Test
  void callStartFailureFailsOnlyItsStream() throws Exception {
    Status st = badStreamBetweenGoodOnes(unaryWith(md -> md.add(
        new String[] {"x-explode", "1"})));
    assertEquals(Status.Code.INTERNAL, st.getCode(), st.toString());
  }
}
