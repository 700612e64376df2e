package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpcshm.ProtobufParsing;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link ProtobufParsing#ZERO_COPY} on grpc-shm's builders: an unchanged service and stub get this
 * codec's aliasing marshallers without {@code ZeroCopyServices} in application code.
 */
class BuilderParsingModeTest {
  private static final int MAX_MESSAGE = 16 << 20;

  private static ZeroCopyStats stats(boolean request) {
    var method = ZeroCopyServices.rewrite(BlobServiceGrpc.getEchoMethod());
    return ((ZeroCopyMarshaller<?>) (request ? method.getRequestMarshaller()
        : method.getResponseMarshaller())).stats();
  }

  @Test
  void zeroCopyModeAliasesWithUnchangedServiceAndStub() throws Exception {
    BlobServiceImpl service = new BlobServiceImpl();
    Server server = ShmServerBuilder.forPort(0).protobufParsing(ProtobufParsing.ZERO_COPY)
        .maxInboundMessageSize(MAX_MESSAGE).addService(service).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY)
        .protobufParsing(ProtobufParsing.ZERO_COPY).maxInboundMessageSize(MAX_MESSAGE).build();
    try {
      Blob request = TestMessages.blob(1 << 20, 100, 21);
      long requestsAliased = stats(true).aliased();
      long responsesAliased = stats(false).aliased();
      Blob response = BlobServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(30, TimeUnit.SECONDS).echo(request);
      try (ZeroCopyMessage<Blob> echoed = ZeroCopyMessage.of(response)) {
        assertEquals(request, echoed.get());
        assertTrue(echoed.isAliased(), "the client's response aliases shared memory");
        assertTrue(TestMessages.isDirect(echoed.get().getPayload()));
      }
      assertTrue(service.lastPayloadDirect.get(), "the server read the request in place");
      assertEquals(requestsAliased + 1, stats(true).aliased());
      assertEquals(responsesAliased + 1, stats(false).aliased());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void defaultModeLeavesThisCodecOut() throws Exception {
    BlobServiceImpl service = new BlobServiceImpl();
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(MAX_MESSAGE)
        .addService(service).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).maxInboundMessageSize(MAX_MESSAGE)
        .build();
    try {
      Blob request = TestMessages.blob(6 << 20, 100, 22);
      long requestsAliased = stats(true).aliased();
      Blob response = BlobServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(30, TimeUnit.SECONDS).echo(request);
      assertEquals(request, response);
      // A copy the message owns (a pooled off-heap block or a heap array), never shared memory.
      assertFalse(TestMessages.inSharedMemory(response.getPayload()),
          "a copy owned by the message");
      try (ZeroCopyMessage<Blob> owned = ZeroCopyMessage.of(response)) {
        assertFalse(owned.isAliased());
      }
      assertFalse(service.lastPayloadShared.get());
      assertEquals(requestsAliased, stats(true).aliased());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
