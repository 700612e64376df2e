package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import io.grpcshm.codec.testing.Counters;
import io.grpcshm.codec.testing.Digest;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The same calls over grpc-shm (aliasing), Netty and in-process (copying or passing through):
 * same answers everywhere, and the path each transport really took.
 */
class TransportRoundTripTest {
  private static final int MAX_MESSAGE = 16 << 20;

  enum Kind { SHM, NETTY, IN_PROCESS }

  private final BlobServiceImpl service = new BlobServiceImpl();
  private Server server;
  private ManagedChannel channel;

  private void start(Kind kind) throws Exception {
    var definition = ZeroCopyServices.rewrite(service);
    switch (kind) {
      case SHM -> {
        server = ShmServerBuilder.forPort(0).maxInboundMessageSize(MAX_MESSAGE)
            .addService(definition).build().start();
        channel = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
            .transportMode(TransportMode.SHM_ONLY).maxInboundMessageSize(MAX_MESSAGE).build();
      }
      case NETTY -> {
        server = NettyServerBuilder.forPort(0).maxInboundMessageSize(MAX_MESSAGE)
            .addService(definition).build().start();
        channel = NettyChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
            .maxInboundMessageSize(MAX_MESSAGE).build();
      }
      case IN_PROCESS -> {
        String name = InProcessServerBuilder.generateName();
        server = InProcessServerBuilder.forName(name).addService(definition).build().start();
        channel = InProcessChannelBuilder.forName(name).build();
      }
    }
  }

  @AfterEach
  void stop() throws Exception {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private BlobServiceGrpc.BlobServiceBlockingStub zeroCopyStub() {
    return BlobServiceGrpc.newBlockingStub(channel)
        .withInterceptors(ZeroCopyServices.clientInterceptor())
        .withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private static ZeroCopyStats requestStats() {
    return ((ZeroCopyMarshaller<?>) ZeroCopyServices.rewrite(BlobServiceGrpc.getEchoMethod())
        .getRequestMarshaller()).stats();
  }

  private static ZeroCopyStats responseStats() {
    return ((ZeroCopyMarshaller<?>) ZeroCopyServices.rewrite(BlobServiceGrpc.getEchoMethod())
        .getResponseMarshaller()).stats();
  }

  @ParameterizedTest
  @EnumSource(Kind.class)
  void largeEchoTakesTheTransportsPath(Kind kind) throws Exception {
    start(kind);
    Blob request = TestMessages.blob(1 << 20, 100, 11);
    long reqAliased = requestStats().aliased();
    long respAliased = responseStats().aliased();
    long passed = requestStats().passedThrough();

    Blob response = zeroCopyStub().echo(request);
    try (ZeroCopyMessage<Blob> echoed = ZeroCopyMessage.of(response)) {
      assertEquals(request, echoed.get());
      boolean clientDirect = TestMessages.isDirect(echoed.get().getPayload());
      switch (kind) {
        case SHM -> {
          assertTrue(service.lastPayloadDirect.get(), "server read the request in place");
          assertTrue(clientDirect, "client read the response in place");
          assertEquals(reqAliased + 1, requestStats().aliased());
          assertEquals(respAliased + 1, responseStats().aliased());
          assertTrue(echoed.isAliased());
        }
        case NETTY -> {
          assertFalse(service.lastPayloadDirect.get(), "Netty: ordinary copy");
          assertFalse(clientDirect);
          assertEquals(reqAliased, requestStats().aliased());
          assertEquals(respAliased, responseStats().aliased());
          assertFalse(echoed.isAliased());
        }
        case IN_PROCESS -> {
          assertEquals(passed + 1, requestStats().passedThrough());
          assertEquals(reqAliased, requestStats().aliased());
          assertFalse(echoed.isAliased());
        }
      }
    }
  }

  @ParameterizedTest
  @EnumSource(Kind.class)
  void sameAnswersForSmallAndLargeMessages(Kind kind) throws Exception {
    start(kind);
    var stub = zeroCopyStub();
    var stock = BlobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
    for (int size : new int[] {0, 1, 100, 70_000, 3 << 20}) {
      Blob request = TestMessages.blob(size, size % 7 + 3, size);
      Digest expected = TestMessages.digest(request);
      assertEquals(expected, stub.summarize(request), "zero-copy client, size " + size);
      // Wire compatibility: a stock ProtoUtils client against the zero-copy server.
      assertEquals(expected, stock.summarize(request), "stock client, size " + size);
    }
    Counters.Builder counters = Counters.newBuilder().setNote("many small fields");
    for (int i = 0; i < 30_000; i++) {
      counters.addValues(i * 1_000_003L);
    }
    assertEquals(counters.build(), stub.count(counters.build()));
  }

  @ParameterizedTest
  @EnumSource(Kind.class)
  void bidiStreamingEchoesEveryMessage(Kind kind) throws Exception {
    start(kind);
    List<Blob> sent = new ArrayList<>();
    for (int size : new int[] {10, 100_000, 1_000, 300_000, 0, 2 << 20}) {
      sent.add(TestMessages.blob(size, 5, size + 1));
    }
    List<Blob> received = new ArrayList<>();
    CompletableFuture<Void> done = new CompletableFuture<>();
    StreamObserver<Blob> requests = BlobServiceGrpc.newStub(channel)
        .withInterceptors(ZeroCopyServices.clientInterceptor())
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .chat(new StreamObserver<>() {
          @Override
          public void onNext(Blob value) {
            // Copy out what we keep, then give the memory back at once.
            try (ZeroCopyMessage<Blob> m = ZeroCopyMessage.of(value)) {
              received.add(m.copy());
            }
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
    for (Blob b : sent) {
      requests.onNext(b);
    }
    requests.onCompleted();
    done.get(30, TimeUnit.SECONDS);
    assertEquals(sent, received);
  }
}
