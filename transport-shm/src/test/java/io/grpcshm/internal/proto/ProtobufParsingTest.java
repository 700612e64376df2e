package io.grpcshm.internal.proto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.DynamicMessage;
import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ProtobufParsing;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.hardening.Hardening;
import io.grpcshm.internal.proto.testing.DigestRequest;
import io.grpcshm.internal.proto.testing.Everything;
import io.grpcshm.internal.proto.testing.Kind;
import io.grpcshm.internal.proto.testing.Newer;
import io.grpcshm.internal.proto.testing.ParsingGrpc;
import io.grpcshm.internal.proto.testing.Part;
import io.grpcshm.internal.proto.testing.ServerState;
import io.grpcshm.internal.proto.testing.StateRequest;
import io.grpcshm.internal.proto.testing2.Inner;
import io.grpcshm.internal.proto.testing2.Legacy;
import io.grpcshm.internal.proto.testing2.LegacyServiceGrpc;
import io.grpcshm.internal.proto.testing2.Parsing2;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Unchanged generated services and stubs behind {@link ShmServerBuilder} and {@link
 * ShmChannelBuilder} (the server in a child JVM): messages over 4 MiB are parsed from one copy
 * out of shared memory on both sides, every protobuf shape survives, parsed messages own their
 * memory, and everything else keeps grpc's own marshallers.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class ProtobufParsingTest {
  private static final int MIB = 1 << 20;
  private static final int SERVER_MAX_INBOUND = 24 * MIB;
  private static final String ECHO = ParsingGrpc.getEchoMethod().getFullMethodName();

  private static ChildJvm server;
  private static ManagedChannel channel;
  private static ParsingGrpc.ParsingBlockingStub stub;

  @BeforeAll
  static void startServer() throws Exception {
    server = ChildJvm.start(ParsingServerMain.class, "-Xmx1g", "COPY_ONCE",
        String.valueOf(SERVER_MAX_INBOUND));
    channel = shmChannel(server.port(), ProtobufParsing.COPY_ONCE, 64 * MIB);
    stub = ParsingGrpc.newBlockingStub(channel);
  }

  @AfterAll
  static void stopServer() throws Exception {
    try {
      if (channel != null) {
        channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      }
    } finally {
      if (server != null) {
        server.close();
      }
    }
  }

  private static ManagedChannel shmChannel(int port, ProtobufParsing parsing, int maxInbound) {
    return ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).protobufParsing(parsing)
        .maxInboundMessageSize(maxInbound).build();
  }

  private static ParsingGrpc.ParsingBlockingStub deadline(ParsingGrpc.ParsingBlockingStub s) {
    return s.withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  private static ServerState state(ParsingGrpc.ParsingBlockingStub s, String method) {
    return deadline(s).state(StateRequest.newBuilder().setMethod(method).build());
  }

  private static long clientCopies() {
    return CopyOnceMarshaller.COPIED_ONCE.sum();
  }

  // ---- messages ----

  private static ByteString randomBytes(SplittableRandom random, int size) {
    byte[] bytes = new byte[size];
    random.nextBytes(bytes);
    return ByteString.copyFrom(bytes);
  }

  private static Part part(SplittableRandom random, int depth, int dataBytes) {
    Part.Builder part = Part.newBuilder().setId(random.nextInt()).setLabel("part-ü-" + depth)
        .setData(randomBytes(random, dataBytes));
    for (int i = 0; i < 5; i++) {
      part.addMarks(random.nextInt());
    }
    if (depth > 0) {
      part.setChild(part(random, depth - 1, 16));
    }
    return part.build();
  }

  /** Every field set, small except {@code payload}. */
  private static Everything.Builder full(long seed, int payloadBytes) {
    SplittableRandom random = new SplittableRandom(seed);
    Everything.Builder m = Everything.newBuilder()
        .setPayload(randomBytes(random, payloadBytes))
        .setText("grüße, 世界, seed " + seed)
        .setSeq(seed)
        .setNested(part(random, 3, 100))
        .setRatio(random.nextDouble())
        .setFlag(true)
        .setKind(Kind.LARGE)
        .setChoicePart(part(random, 1, 10));
    for (int i = 0; i < 20; i++) {
      m.addParts(part(random, i % 3, 50));
      m.putByName("name-" + i, part(random, 0, 8));
      m.putBlobs(i - 10, randomBytes(random, 30));
      m.addDeltas(random.nextLong());
      m.addWords("word-" + random.nextInt(1000) + "-ß");
    }
    return m;
  }

  /** Messages over 4 MiB whose size sits in different shapes. */
  private static List<Everything> largeShapes(long seed) {
    List<Everything> shapes = new ArrayList<>();
    shapes.add(full(seed, 6 * MIB).build());
    SplittableRandom random = new SplittableRandom(seed + 1);
    // Deep inside: a nested message's bytes, and a oneof holding bytes.
    Everything.Builder nested = full(seed + 1, 0).clearParts();
    nested.addParts(part(random, 0, 10)).addParts(part(random, 0, 10))
        .addParts(Part.newBuilder().setId(3).setChild(part(random, 2, 5 * MIB)));
    nested.setChoiceBytes(randomBytes(random, 1024));
    shapes.add(nested.build());
    // Many strings (over 4 MiB of them) and a oneof string.
    Everything.Builder words = full(seed + 2, 10).clearWords();
    for (int i = 0; i < 180_000; i++) {
      words.addWords("w" + random.nextInt() + "-äöü-" + i);
    }
    words.setChoiceText("chosen ☃");
    shapes.add(words.build());
    // Maps of sizeable values.
    Everything.Builder maps = full(seed + 3, 0);
    for (int i = 0; i < 8; i++) {
      maps.putBlobs(1000 + i, randomBytes(random, 700 * 1024));
    }
    for (int i = 0; i < 1000; i++) {
      maps.putByName("key-" + i, part(random, 1, 20));
    }
    shapes.add(maps.build());
    // Only the payload: every other field at its default, no oneof case.
    shapes.add(Everything.newBuilder().setPayload(randomBytes(random, 5 * MIB)).build());
    for (Everything m : shapes) {
      assertTrue(m.getSerializedSize() > CopyOnceMarshaller.GRPC_BUFFERED_LIMIT, "shape too small");
    }
    return shapes;
  }

  private static void assertSameMessage(com.google.protobuf.Message expected,
      com.google.protobuf.Message actual) {
    assertEquals(expected, actual);
    assertArrayEquals(expected.toByteArray(), actual.toByteArray());
  }

  // ---- tests ----

  @Test
  void everyShapeIsParsedFromOneCopyOnBothSides() {
    long serverBefore = state(stub, ECHO).getCopiedOnce();
    long clientBefore = clientCopies();
    List<Everything> shapes = largeShapes(1);
    for (Everything sent : shapes) {
      assertSameMessage(sent, deadline(stub).echo(sent));
    }
    ServerState after = state(stub, ECHO);
    assertEquals(shapes.size(), after.getCopiedOnce() - serverBefore, "server copy-once parses");
    assertEquals(shapes.size(), clientCopies() - clientBefore, "client copy-once parses");
    assertFalse(after.getOriginalMarshaller(),
        "the shared-memory server uses its own marshaller for a generated method");
  }

  @Test
  void smallMessagesAndDefaultInstancesStayWithGrpc() {
    long serverBefore = state(stub, ECHO).getCopiedOnce();
    long clientBefore = clientCopies();
    assertSameMessage(Everything.getDefaultInstance(),
        deadline(stub).echo(Everything.getDefaultInstance()));
    Everything small = full(2, 1024).build();
    assertSameMessage(small, deadline(stub).echo(small));
    Everything fourMib = Everything.newBuilder()
        .setPayload(ByteString.copyFrom(new byte[4 * MIB - 5])).build();
    assertEquals(CopyOnceMarshaller.GRPC_BUFFERED_LIMIT, fourMib.getSerializedSize());
    assertSameMessage(fourMib, deadline(stub).echo(fourMib));
    assertEquals(serverBefore, state(stub, ECHO).getCopiedOnce());
    assertEquals(clientBefore, clientCopies());
  }

  @Test
  void unknownFieldsSurvive() {
    MethodDescriptor<Newer, Newer> newerEcho = ParsingGrpc.getEchoMethod().toBuilder(
        ProtoUtils.marshaller(Newer.getDefaultInstance()),
        ProtoUtils.marshaller(Newer.getDefaultInstance())).build();
    SplittableRandom random = new SplittableRandom(3);
    Newer sent = Newer.newBuilder().setPayload(randomBytes(random, 10)).setText("known")
        .setSeq(7).setExtraBytes(randomBytes(random, 5 * MIB)).setExtraText("unknown to Everything")
        .addExtraNumbers(1).addExtraNumbers(-2).setExtraPart(part(random, 2, 100)).build();
    long serverBefore = state(stub, ECHO).getCopiedOnce();
    Newer back = ClientCalls.blockingUnaryCall(channel, newerEcho,
        CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS), sent);
    assertSameMessage(sent, back);
    assertEquals(serverBefore + 1, state(stub, ECHO).getCopiedOnce(),
        "the server parsed an Everything with unknown fields from its copy");
  }

  @Test
  void proto2PresenceDefaultsGroupsAndExtensionsFromGrpcsRegistry() {
    SplittableRandom random = new SplittableRandom(4);
    Legacy sent = Legacy.newBuilder().setId(42).setBlob(randomBytes(random, 5 * MIB))
        .addNumbers(1).addNumbers(2).addNumbers(3)
        .setInner(Inner.newBuilder().setLabel("inner ä").addChunks(randomBytes(random, 99))
            .addChunks(ByteString.EMPTY))
        .setGrouped(Legacy.Grouped.newBuilder().setNote("group note").setRaw(randomBytes(random,
            64)))
        .setPickNumber(-5)
        .setExtension(Parsing2.extNote, "noted")
        .setExtension(Parsing2.extBlob, randomBytes(random, 300))
        .build();
    LegacyServiceGrpc.LegacyServiceBlockingStub legacy = LegacyServiceGrpc.newBlockingStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS);
    Legacy back = legacy.echo(sent);
    // The client's registry does not know the extensions: they come back as unknown fields.
    assertArrayEquals(sent.toByteArray(), back.toByteArray());
    assertFalse(back.hasName());
    assertEquals("unnamed", back.getName());
    assertEquals(1.5, back.getWeight());
    assertEquals(Legacy.PickCase.PICK_NUMBER, back.getPickCase());
    assertEquals(sent.getGrouped(), back.getGrouped());
    assertEquals(sent.getInner(), back.getInner());
    // The server's parse used grpc's extension registry.
    assertEquals("extension:noted", legacy.inspect(sent).getName());
    Legacy small = sent.toBuilder().clearBlob().build();
    assertEquals("extension:noted", legacy.inspect(small).getName());
  }

  @Test
  void keptMessagesStayIntactWhileTheSharedMemoryIsReused() {
    ParsingGrpc.ParsingBlockingStub s = deadline(stub);
    ServerState serverBefore = state(stub, ECHO);
    ReceiveBlockPool.Stats clientBefore = ReceiveBlockPool.shared().stats();
    List<Everything> keptByServer = new ArrayList<>();
    List<Everything> sentForClient = new ArrayList<>();
    List<Everything> keptByClient = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      Everything kept = full(100 + i, 5 * MIB).build();
      keptByServer.add(kept);
      deadline(stub).keep(kept);
      Everything echoed = full(200 + i, 5 * MIB).build();
      sentForClient.add(echoed);
      keptByClient.add(deadline(stub).echo(echoed));
    }
    // Both directions' pools hand out the same lowest extents again for every call; collecting
    // garbage now and then on both sides gives the receive blocks of the messages not kept back
    // to their pools, which lend them again to later messages while the kept ones hold theirs.
    for (int i = 0; i < 40; i++) {
      Everything other = full(1000 + i, 5 * MIB + 4096 * (i % 3)).build();
      assertEquals(other.getPayload(), deadline(stub).echo(other).getPayload());
      if (i % 4 == 3) {
        ParsingServerMain.collectGarbage();
        deadline(stub).state(StateRequest.newBuilder().setMethod(ECHO).setCollectGarbage(true)
            .build());
      }
    }
    List<ByteString> digests = s.keptDigests(DigestRequest.getDefaultInstance())
        .getSha256List();
    List<ByteString> tail = digests.subList(digests.size() - keptByServer.size(),
        digests.size());
    for (int i = 0; i < keptByServer.size(); i++) {
      assertEquals(ParsingServerMain.sha256(keptByServer.get(i).toByteString()), tail.get(i),
          "kept request " + i + " changed on the server");
      assertArrayEquals(sentForClient.get(i).toByteArray(), keptByClient.get(i).toByteArray(),
          "kept response " + i + " changed on the client");
      assertTrue(keptByClient.get(i).getPayload().asReadOnlyByteBuffer().isDirect(),
          "kept response " + i + " lives in a pooled off-heap block");
    }
    ServerState serverAfter = state(stub, ECHO);
    ReceiveBlockPool.Stats clientAfter = ReceiveBlockPool.shared().stats();
    assertTrue(serverAfter.getPoolReused() - serverBefore.getPoolReused() > 0,
        "the server reused receive blocks: " + serverAfter);
    assertTrue(clientAfter.reused() - clientBefore.reused() > 0,
        "the client reused receive blocks: " + clientAfter);
    assertTrue(serverAfter.getPoolLent() - serverBefore.getPoolLent() >= 3 + 40,
        "the server parsed every large request from a pooled block: " + serverAfter);
  }

  @Test
  void bidiStreamsOfLargeAndSmallMessages() throws Exception {
    List<Everything> sent = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      sent.add(full(300 + i, 5 * MIB).build());
      sent.add(full(400 + i, 100).build());
    }
    List<Everything> received = new CopyOnWriteArrayList<>();
    CompletableFuture<Void> done = new CompletableFuture<>();
    long clientBefore = clientCopies();
    StreamObserver<Everything> requests = ParsingGrpc.newStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS).echoStream(new StreamObserver<>() {
          @Override
          public void onNext(Everything value) {
            received.add(value);
          }

          @Override
          public void onError(Throwable t) {
            done.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            done.complete(null);
          }
        });
    for (Everything m : sent) {
      requests.onNext(m);
    }
    requests.onCompleted();
    done.get(60, TimeUnit.SECONDS);
    assertEquals(sent.size(), received.size());
    for (int i = 0; i < sent.size(); i++) {
      assertSameMessage(sent.get(i), received.get(i));
    }
    assertEquals(6, clientCopies() - clientBefore);
  }

  @Test
  void dynamicMessageAndNonProtobufMarshallersAreLeftAlone() {
    assertSame(ParsingServerMain.DYNAMIC_ECHO, ProtoParsing.copyOnce(
        ParsingServerMain.DYNAMIC_ECHO));
    assertSame(ParsingServerMain.BYTES_ECHO, ProtoParsing.copyOnce(ParsingServerMain.BYTES_ECHO));
    MethodDescriptor<Everything, Everything> generated = ParsingGrpc.getEchoMethod();
    MethodDescriptor<Everything, Everything> rewritten = ProtoParsing.copyOnce(generated);
    assertNotSame(generated, rewritten);
    assertSame(rewritten, ProtoParsing.copyOnce(generated), "cached per descriptor");
    assertInstanceOf(CopyOnceMarshaller.class, rewritten.getRequestMarshaller());
    assertEquals(generated.getFullMethodName(), rewritten.getFullMethodName());
    assertSame(generated.getSchemaDescriptor(), rewritten.getSchemaDescriptor());

    Everything large = full(5, 5 * MIB).build();
    long serverBefore = state(stub, ECHO).getCopiedOnce();
    long clientBefore = clientCopies();
    DynamicMessage dynamic = DynamicMessage.newBuilder(Everything.getDescriptor())
        .mergeFrom(large).build();
    DynamicMessage dynamicBack = ClientCalls.blockingUnaryCall(channel,
        ParsingServerMain.DYNAMIC_ECHO, CallOptions.DEFAULT.withDeadlineAfter(60,
            TimeUnit.SECONDS), dynamic);
    assertArrayEquals(large.toByteArray(), dynamicBack.toByteArray());
    byte[] bytes = large.toByteArray();
    byte[] bytesBack = ClientCalls.blockingUnaryCall(channel, ParsingServerMain.BYTES_ECHO,
        CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS), bytes);
    assertArrayEquals(bytes, bytesBack);
    assertTrue(state(stub, ParsingServerMain.DYNAMIC_ECHO.getFullMethodName())
        .getOriginalMarshaller());
    ServerState bytesState = state(stub, ParsingServerMain.BYTES_ECHO.getFullMethodName());
    assertTrue(bytesState.getOriginalMarshaller());
    assertEquals(serverBefore, bytesState.getCopiedOnce());
    assertEquals(clientBefore, clientCopies());
  }

  @Test
  void tcpKeepsGrpcsMarshallers() throws Exception {
    ManagedChannel tcp = ShmChannelBuilder.forAddress("localhost", server.port()).usePlaintext()
        .transportMode(TransportMode.TCP_ONLY).maxInboundMessageSize(64 * MIB).build();
    try {
      ParsingGrpc.ParsingBlockingStub tcpStub = ParsingGrpc.newBlockingStub(tcp);
      long serverBefore = state(stub, ECHO).getCopiedOnce();
      long clientBefore = clientCopies();
      Everything sent = full(6, 6 * MIB).build();
      assertSameMessage(sent, deadline(tcpStub).echo(sent));
      ServerState after = state(tcpStub, ECHO);
      assertTrue(after.getOriginalMarshaller(), "the TCP server keeps the generated marshaller");
      assertEquals(serverBefore, after.getCopiedOnce());
      assertEquals(clientBefore, clientCopies(), "a TCP response goes to grpc's marshaller");
    } finally {
      tcp.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void stockModeIsGrpcsMarshallerExactly() throws Exception {
    try (ChildJvm stock = ChildJvm.start(ParsingServerMain.class, "-Xmx1g", "STOCK",
        String.valueOf(SERVER_MAX_INBOUND))) {
      ManagedChannel ch = shmChannel(stock.port(), ProtobufParsing.STOCK, 64 * MIB);
      try {
        ParsingGrpc.ParsingBlockingStub stockStub = ParsingGrpc.newBlockingStub(ch);
        long clientBefore = clientCopies();
        for (Everything sent : largeShapes(7)) {
          assertSameMessage(sent, deadline(stockStub).echo(sent));
        }
        ServerState after = state(stockStub, ECHO);
        assertTrue(after.getOriginalMarshaller());
        assertEquals(0, after.getCopiedOnce());
        assertEquals(clientBefore, clientCopies());
        assertEquals(refusals(channel, stub), refusals(ch, stockStub));
      } finally {
        ch.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void maxInboundMessageSizeIsStillEnforced() throws Exception {
    Everything tooLargeForServer = Everything.newBuilder()
        .setPayload(ByteString.copyFrom(new byte[SERVER_MAX_INBOUND + 1])).build();
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> deadline(stub).echo(tooLargeForServer));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode(), e.toString());

    ManagedChannel limited = shmChannel(server.port(), ProtobufParsing.COPY_ONCE, 8 * MIB);
    try {
      Everything nineMib = Everything.newBuilder()
          .setPayload(ByteString.copyFrom(new byte[9 * MIB])).build();
      StatusRuntimeException response = assertThrows(StatusRuntimeException.class,
          () -> deadline(ParsingGrpc.newBlockingStub(limited)).echo(nineMib));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, response.getStatus().getCode(),
          response.toString());
      Everything sixMib = full(8, 6 * MIB).build();
      assertSameMessage(sixMib, deadline(ParsingGrpc.newBlockingStub(limited)).echo(sixMib));
    } finally {
      limited.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void invalidMessagesFailTheirCallAsWithGrpcsMarshaller() {
    // grpc's server turns a marshaller's parse failure into this status, whichever marshaller;
    // stockModeIsGrpcsMarshallerExactly sees the same from grpc's own.
    assertEquals(List.of("UNKNOWN: Application error processing RPC",
        "UNKNOWN: Application error processing RPC"), refusals(channel, stub));
  }

  /** Statuses of a garbage request and of one nested too deeply; then a good call. */
  private static List<String> refusals(ManagedChannel ch, ParsingGrpc.ParsingBlockingStub s) {
    List<String> statuses = new ArrayList<>();
    MethodDescriptor<byte[], byte[]> rawEcho = ParsingGrpc.getEchoMethod().toBuilder(
        Hardening.BYTES, Hardening.BYTES).build();
    byte[] garbage = new byte[5 * MIB];
    new SplittableRandom(9).nextBytes(garbage);
    garbage[0] = 0x0a; // field 1, length-delimited, with a length far beyond the message
    garbage[1] = (byte) 0xff;
    garbage[2] = (byte) 0xff;
    garbage[3] = (byte) 0xff;
    garbage[4] = 0x07;
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(ch, rawEcho,
            CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS), garbage));
    statuses.add(e.getStatus().getCode() + ": " + e.getStatus().getDescription());
    // Deeper than protobuf's recursion limit (100).
    Part deep = Part.newBuilder().setData(ByteString.copyFrom(new byte[5 * MIB])).build();
    for (int i = 0; i < 120; i++) {
      deep = Part.newBuilder().setId(i).setChild(deep).build();
    }
    Everything tooDeep = Everything.newBuilder().setNested(deep).build();
    StatusRuntimeException recursion = assertThrows(StatusRuntimeException.class,
        () -> deadline(s).echo(tooDeep));
    statuses.add(recursion.getStatus().getCode() + ": " + recursion.getStatus().getDescription());
    // The server is fine.
    Everything ok = full(10, 5 * MIB).build();
    assertSameMessage(ok, deadline(s).echo(ok));
    return statuses;
  }

  @Test
  void zeroCopyNeedsTheCodecModule() {
    assertThrows(IllegalStateException.class,
        () -> ShmServerBuilder.forPort(0).protobufParsing(ProtobufParsing.ZERO_COPY));
    assertThrows(IllegalStateException.class,
        () -> ShmChannelBuilder.forTarget("localhost:1").protobufParsing(
            ProtobufParsing.ZERO_COPY));
  }
}
