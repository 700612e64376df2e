package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpcshm.dsa.MoverPolicy;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.ServiceLoader;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A module that wants only the transport gets no policy: neither the learned policy nor
 * LightGBM is on this module's test class path (which is its runtime class path plus test
 * libraries), and large off-heap payloads still go to the data movers, chosen by the built-in
 * break-even rule of {@link DataMovement#defaults()}.
 */
class TransportWithoutPolicyTest {
  private static final int PAYLOAD = 1 << 20;

  @Test
  void noPolicyOrLightGbmClassIsLoadable() {
    ClassLoader loader = TransportWithoutPolicyTest.class.getClassLoader();
    for (String name : List.of("io.grpcshm.policy.PolicyEngine",
        "io.grpcshm.policy.DefaultPolicyProvider", "io.grpcshm.policy.tools.Train",
        "io.grpcshm.policy.internal.TraceCsv", "com.microsoft.ml.lightgbm.PredictionType",
        "io.github.metarank.lightgbm4j.LGBMBooster")) {
      assertThrows(ClassNotFoundException.class, () -> Class.forName(name, false, loader), name);
    }
    assertFalse(ServiceLoader.load(MoverPolicy.Provider.class, loader).iterator().hasNext(),
        "a MoverPolicy provider is on the class path");
  }

  /** A direct buffer's bytes, offered to the data movers through {@link BulkWriter}. */
  private static final MethodDescriptor.Marshaller<ByteBuffer> OFF_HEAP =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(ByteBuffer value) {
          return new BulkStream(value.duplicate());
        }

        @Override
        public ByteBuffer parse(InputStream stream) {
          throw new UnsupportedOperationException("client-side only");
        }
      };

  /** One marker byte through grpc's stream, then the payload by a mover (or written). */
  private static final class BulkStream extends InputStream implements Drainable, KnownLength {
    private ByteBuffer payload;

    BulkStream(ByteBuffer payload) {
      this.payload = payload;
    }

    @Override
    public int drainTo(OutputStream target) throws IOException {
      ByteBuffer p = payload;
      payload = null;
      int n = 1 + p.remaining();
      try {
        BulkWriter.mark();
        target.write(0x7f);
        target.flush();
        if (!BulkWriter.tryMove(p)) {
          byte[] copy = new byte[p.remaining()];
          p.get(copy);
          target.write(copy);
        }
      } finally {
        BulkWriter.finish();
      }
      return n;
    }

    @Override
    public int available() {
      return payload == null ? 0 : 1 + payload.remaining();
    }

    @Override
    public int read() {
      throw new UnsupportedOperationException("drained only");
    }
  }

  @Test
  void largeOffHeapPayloadsAreMovedByTheBuiltInRule() throws Exception {
    MethodDescriptor<ByteBuffer, byte[]> clientSide =
        MethodDescriptor.<ByteBuffer, byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName("grpcshm.test.Bulk/Echo")
        .setRequestMarshaller(OFF_HEAP)
        .setResponseMarshaller(EchoService.BYTES)
        .build();
    MethodDescriptor<byte[], byte[]> serverSide = MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName("grpcshm.test.Bulk/Echo")
        .setRequestMarshaller(EchoService.BYTES)
        .setResponseMarshaller(EchoService.BYTES)
        .build();
    ServerServiceDefinition service = ServerServiceDefinition.builder("grpcshm.test.Bulk")
        .addMethod(serverSide, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(req);
          obs.onCompleted();
        }))
        .build();
    byte[] bytes = new byte[PAYLOAD];
    new SplittableRandom(17).nextBytes(bytes);
    ByteBuffer payload = ByteBuffer.allocateDirect(PAYLOAD).put(bytes).flip();
    byte[] expected = new byte[PAYLOAD + 1];
    expected[0] = 0x7f;
    System.arraycopy(bytes, 0, expected, 1, PAYLOAD);

    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    Server server = ShmServerBuilder.forPort(0).addService(service).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY)
        .dataMovement(DataMovement.defaults().withTracer(events::add)).build();
    try {
      // The first moves are CPU copies while the host's movers open in the background.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (events.stream().noneMatch(e -> e.basis().equals("rule"))) {
        assertTrue(System.nanoTime() < deadline, "no move decided by the rule: " + events);
        byte[] echoed = ClientCalls.blockingUnaryCall(channel, clientSide,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), payload);
        assertArrayEquals(expected, echoed);
        Thread.sleep(50);
      }
      for (MoveEvent e : events) {
        assertEquals(PAYLOAD, e.bytes(), e.toString());
        assertTrue(e.basis().equals("warm-up") || e.basis().equals("rule"), e.toString());
        assertFalse(e.cpuFallback(), e.toString());
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
