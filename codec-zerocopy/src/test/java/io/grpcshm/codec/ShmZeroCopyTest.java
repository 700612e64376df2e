package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.UnsafeByteOperations;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ServerCalls;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import io.grpcshm.codec.testing.Digest;
import java.io.InputStream;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Over grpc-shm: a 64 MiB {@code bytes} field arrives as a view of shared memory, parsed with a
 * heap allocation far below its size; released memory cannot be read through a kept view; a
 * forgotten message is reclaimed by the safety net.
 */
class ShmZeroCopyTest {
  private static final int SIZE = 64 << 20;

  private static final ZeroCopyMarshaller<Blob> REQUESTS = ZeroCopyMarshaller.of(Blob.getDefaultInstance());
  private static final Measuring<Blob> MEASURED = new Measuring<>(REQUESTS);
  private static final AtomicReference<Object> afterRelease = new AtomicReference<>();

  private static Server server;
  private static ManagedChannel channel;

  /** Server side of Summarize, parsing through {@link #MEASURED}; releases explicitly. */
  private static final MethodDescriptor<Blob, Digest> SUMMARIZE =
      BlobServiceGrpc.getSummarizeMethod().toBuilder()
          .setRequestMarshaller(MEASURED)
          .setResponseMarshaller(ZeroCopyMarshaller.of(Digest.getDefaultInstance()))
          .build();

  /** Server side of Echo that never releases its request (the leak the safety net catches). */
  private static final MethodDescriptor<Blob, Blob> LEAKY_ECHO =
      BlobServiceGrpc.getEchoMethod().toBuilder()
          .setRequestMarshaller(REQUESTS)
          .setResponseMarshaller(ZeroCopyMarshaller.of(Blob.getDefaultInstance()))
          .build();

  @BeforeAll
  static void start() throws Exception {
    ServerServiceDefinition service = ServerServiceDefinition.builder(BlobServiceGrpc.SERVICE_NAME)
        .addMethod(SUMMARIZE, ServerCalls.asyncUnaryCall((request, responses) -> {
          Digest digest;
          var payload = request.getPayload();
          try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
            assertTrue(blob.isAliased());
            digest = TestMessages.digest(blob.get());
          }
          try {
            afterRelease.set(payload.byteAt(0));
          } catch (RuntimeException e) {
            afterRelease.set(e);
          }
          responses.onNext(digest.toBuilder().setName(
              TestMessages.isDirect(payload) ? "direct" : "heap").build());
          responses.onCompleted();
        }))
        .addMethod(LEAKY_ECHO, ServerCalls.asyncUnaryCall((request, responses) -> {
          responses.onNext(Blob.newBuilder().setSeq(request.getPayload().size()).build());
          responses.onCompleted();
        }))
        .build();
    server = ShmServerBuilder.forPort(0).maxInboundMessageSize(SIZE + (1 << 20))
        .addService(service).build().start();
    channel = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
  }

  @AfterAll
  static void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  @Test
  void sixtyFourMebibytesParseInPlace() {
    byte[] payload = TestMessages.pattern(SIZE, 64);
    Blob request = Blob.newBuilder().setPayload(UnsafeByteOperations.unsafeWrap(payload))
        .setName("big").setSeq(64).build();
    long expectedCrc = TestMessages.crc(request.getPayload());
    long aliased = REQUESTS.stats().aliased();
    long released = REQUESTS.stats().releasedExplicitly();

    // Warm-up: class loading and first-use initialisation are not per-message costs.
    BlobServiceGrpc.newBlockingStub(channel).withInterceptors(ZeroCopyServices.clientInterceptor())
        .withDeadlineAfter(30, TimeUnit.SECONDS).summarize(TestMessages.blob(256 << 10, 3, 1));
    aliased = REQUESTS.stats().aliased();
    released = REQUESTS.stats().releasedExplicitly();

    long clientBefore = TestMessages.allocatedBytes();
    Digest digest = BlobServiceGrpc.newBlockingStub(channel)
        .withInterceptors(ZeroCopyServices.clientInterceptor())
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .summarize(request);
    long clientAllocated = TestMessages.allocatedBytes() - clientBefore;

    assertEquals(SIZE, digest.getPayloadSize());
    assertEquals(expectedCrc, digest.getPayloadCrc(), "server read the right bytes");
    assertEquals("direct", digest.getName(), "payload was a view of shared memory");
    assertEquals(aliased + 1, REQUESTS.stats().aliased());
    assertEquals(released + 1, REQUESTS.stats().releasedExplicitly());
    long parseAllocated = MEASURED.lastAllocated.get();
    System.out.printf("64 MiB: server parse allocated %d bytes, client call allocated %d bytes%n",
        parseAllocated, clientAllocated);
    assertTrue(parseAllocated < 256 * 1024,
        "parse allocated " + parseAllocated + " bytes for a " + SIZE + "-byte field");
    // Send side: serialised straight into the shared-memory extent (no payload-sized array).
    assertTrue(clientAllocated < 8 << 20, "client call allocated " + clientAllocated + " bytes");
    // The view kept past close() threw instead of reading memory the client may now reuse.
    IllegalStateException e = assertInstanceOf(IllegalStateException.class, afterRelease.get());
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
  }

  @Test
  void forgottenMessageIsReclaimedByTheSafetyNet() {
    long reclaimed = REQUESTS.stats().reclaimedByCleaner();
    Blob answer = BlobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS)
        .echo(TestMessages.blob(1 << 20, 3, 5));
    assertEquals(1 << 20, answer.getSeq());
    ZeroCopyLifetimeTest.awaitGc(() -> REQUESTS.stats().reclaimedByCleaner() > reclaimed,
        "the leaked request's lease reclaimed by the Cleaner");
    // The memory went back to the client's pool: more large calls still go through.
    for (int i = 0; i < 3; i++) {
      assertEquals(1 << 20, BlobServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(30, TimeUnit.SECONDS).echo(TestMessages.blob(1 << 20, 3, i)).getSeq());
    }
  }

  /** Measures the heap allocated by the delegate's parse on the parsing thread. */
  static final class Measuring<T> implements MethodDescriptor.Marshaller<T> {
    final MethodDescriptor.Marshaller<T> delegate;
    final AtomicLong lastAllocated = new AtomicLong(-1);

    Measuring(MethodDescriptor.Marshaller<T> delegate) {
      this.delegate = delegate;
    }

    @Override
    public InputStream stream(T value) {
      return delegate.stream(value);
    }

    @Override
    public T parse(InputStream stream) {
      long before = TestMessages.allocatedBytes();
      T value = delegate.parse(stream);
      lastAllocated.set(TestMessages.allocatedBytes() - before);
      return value;
    }
  }
}
