package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.BytesValue;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import io.grpcshm.codec.testing.Digest;
import io.grpcshm.internal.nativeio.SharedMapping;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Reads of aliased bytes after their message was released, and after the connection that lent
 * them is gone, through protobuf's raw-address paths ({@code sun.misc.Unsafe} on direct
 * buffers), which no arena can guard. They may see other bytes, but must never fault: before the
 * transport kept aliased addresses mapped, each of these killed the JVM with SIGSEGV once the
 * connection had closed.
 */
class ReleasedAliasReadsTest {
  static final int VALUE = 256 << 10;

  /** Keeps the request it gets, releases it as the contract asks, and answers a digest. */
  static final class KeepingService extends BlobServiceGrpc.BlobServiceImplBase {
    final AtomicReference<Blob> kept = new AtomicReference<>();
    final AtomicReference<Boolean> aliased = new AtomicReference<>();

    @Override
    public void summarize(Blob request, StreamObserver<Digest> responses) {
      try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
        aliased.set(blob.isAliased() && TestMessages.isDirect(blob.get().getPayload()));
        kept.set(blob.get());
        responses.onNext(TestMessages.digest(blob.get()));
      }
      responses.onCompleted();
    }

    @Override
    public void echo(Blob request, StreamObserver<Blob> responses) {
      try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
        responses.onNext(blob.get());
      }
      responses.onCompleted();
    }
  }

  /** A payload that is itself a valid message, so every parse entry point has work to do. */
  static Blob blob() {
    BytesValue value = BytesValue.of(ByteString.copyFrom(TestMessages.pattern(VALUE, 11)));
    return Blob.newBuilder().setName("kept").setPayload(value.toByteString()).build();
  }

  interface Read {
    Object run(ByteString payload) throws Exception;
  }

  /** Every protobuf entry point that reads a direct ByteString by raw address. */
  static final Map<String, Read> UNGUARDED = new LinkedHashMap<>();

  static {
    UNGUARDED.put("isValidUtf8()", ByteString::isValidUtf8);
    UNGUARDED.put("toStringUtf8()", p -> p.toStringUtf8().length());
    UNGUARDED.put("newCodedInput().readRawByte()", p -> p.newCodedInput().readRawByte());
    UNGUARDED.put("newCodedInput().readBytes()", p -> p.newCodedInput().readBytes().size());
    UNGUARDED.put("BytesValue.parseFrom(ByteString)", p -> BytesValue.parseFrom(p).getValue().size());
    UNGUARDED.put("parser().parseFrom(ByteString)",
        p -> BytesValue.parser().parseFrom(p).getValue().size());
    UNGUARDED.put("Any.unpack()", p -> Any.newBuilder()
        .setTypeUrl("type.googleapis.com/google.protobuf.BytesValue").setValue(p).build()
        .unpack(BytesValue.class).getValue().size());
  }

  /** Runs every read; each returns or throws an ordinary exception (never kills the JVM). */
  static Map<String, String> runAll(ByteString payload) {
    Map<String, String> outcomes = new LinkedHashMap<>();
    for (Map.Entry<String, Read> read : UNGUARDED.entrySet()) {
      String outcome;
      try {
        outcome = "returned " + read.getValue().run(payload);
      } catch (Exception e) {
        outcome = "threw " + e.getClass().getSimpleName();
      }
      outcomes.put(read.getKey(), outcome);
    }
    return outcomes;
  }

  /**
   * Waits for the connection that lent {@code payload} to be torn down: its mapping is then
   * replaced by zero pages, which a raw read shows (the first byte of the payload is not 0).
   */
  static void awaitPlaceholder(ByteString payload) throws Exception {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (payload.newCodedInput().readRawByte() != 0 && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    assertEquals(0, payload.newCodedInput().readRawByte(),
        "the aliased mapping was replaced by a placeholder at teardown");
  }

  @Test
  void serverReadsReleasedRequestAfterReleaseAndAfterTheClientLeft() throws Exception {
    KeepingService service = new KeepingService();
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(ZeroCopyServices.rewrite(service)).build().start();
    try {
      ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
          .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
      Blob sent = blob();
      BlobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
          .summarize(sent);
      assertTrue(service.aliased.get(), "the request aliased shared memory");
      ByteString payload = service.kept.get().getPayload();
      assertThrows(IllegalStateException.class, () -> payload.byteAt(0),
          "guarded reads of a released message throw");
      // Released, connection alive: may see reused bytes, must not fault.
      System.out.println("after release: " + runAll(payload));

      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      awaitPlaceholder(payload);
      // Connection gone: the addresses now hold private zero pages.
      Map<String, String> gone = runAll(payload);
      System.out.println("after teardown: " + gone);
      assertEquals("returned true", gone.get("isValidUtf8()"), "zeros are valid UTF-8");
      assertEquals("returned 0", gone.get("newCodedInput().readRawByte()"), "reads zeros");
      assertEquals("threw InvalidProtocolBufferException",
          gone.get("BytesValue.parseFrom(ByteString)"), "zeros do not parse");
      assertEquals("threw InvalidProtocolBufferException", gone.get("Any.unpack()"));
      assertThrows(IllegalStateException.class, () -> payload.byteAt(0));
    } finally {
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void clientReadsReleasedResponseAfterTheServerLeft() throws Exception {
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(ZeroCopyServices.rewrite(new KeepingService())).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).maxInboundMessageSize(64 << 20)
        .build();
    try {
      Blob response = BlobServiceGrpc.newBlockingStub(channel)
          .withInterceptors(ZeroCopyServices.clientInterceptor())
          .withDeadlineAfter(30, TimeUnit.SECONDS).echo(blob());
      ByteString payload;
      try (ZeroCopyMessage<Blob> handle = ZeroCopyMessage.of(response)) {
        assertTrue(handle.isAliased() && TestMessages.isDirect(handle.get().getPayload()),
            "the response aliased shared memory");
        payload = handle.get().getPayload();
        assertEquals(blob().getPayload(), payload);
      }
      runAll(payload);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      awaitPlaceholder(payload);
      Map<String, String> gone = runAll(payload);
      assertEquals("returned 0", gone.get("newCodedInput().readRawByte()"), gone.toString());
      assertFalse(payload.isEmpty());
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void placeholdersAreUnmappedOnceNoAliasIsLeft() throws Exception {
    int before = SharedMapping.placeholders();
    clientReadsReleasedResponseAfterTheServerLeft();
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (SharedMapping.placeholders() > before && System.nanoTime() < until) {
      System.gc();
      Thread.sleep(50);
    }
    assertTrue(SharedMapping.placeholders() <= before,
        "placeholders left: " + SharedMapping.placeholders() + " (before " + before + ")");
  }
}
