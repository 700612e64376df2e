package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;

/**
 * A 1 GiB message (four times the default pool) without 1 GiB heap arrays: the client's marshaller
 * generates the bytes from a seed as grpc's framer drains it (straight into shared memory), the
 * server's marshaller checksums the stream as it parses it in place.
 */
class LargeMessageTest {
  private static final int ONE_GIB = 1 << 30;

  /** A request described by (size, seed); the bytes exist only while they are being framed. */
  record Virtual(int size, long seed) {}

  private static final MethodDescriptor.Marshaller<Virtual> GENERATED =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(Virtual v) {
          return new GeneratedStream(v);
        }

        @Override
        public Virtual parse(InputStream stream) {
          throw new UnsupportedOperationException("client-side only");
        }
      };

  /** Parses a request into its CRC32 and length, reading 1 MiB at a time. */
  private static final MethodDescriptor.Marshaller<long[]> CHECKSUM =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(long[] value) {
          ByteBuffer b = ByteBuffer.allocate(16).putLong(value[0]).putLong(value[1]);
          return new java.io.ByteArrayInputStream(b.array());
        }

        @Override
        public long[] parse(InputStream stream) {
          try {
            byte[] chunk = new byte[1 << 20];
            CRC32 crc = new CRC32();
            long total = 0;
            int n;
            while ((n = stream.read(chunk)) > 0) {
              crc.update(chunk, 0, n);
              total += n;
            }
            if (total == 16) {
              ByteBuffer b = ByteBuffer.wrap(chunk, 0, 16);
              return new long[] {b.getLong(), b.getLong()};
            }
            return new long[] {crc.getValue(), total};
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };

  private static final MethodDescriptor<Virtual, long[]> CLIENT_SIDE =
      MethodDescriptor.<Virtual, long[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName("grpcshm.test.Big/Checksum")
          .setRequestMarshaller(GENERATED)
          .setResponseMarshaller(CHECKSUM)
          .build();

  private static final MethodDescriptor<long[], long[]> SERVER_SIDE =
      MethodDescriptor.<long[], long[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName("grpcshm.test.Big/Checksum")
          .setRequestMarshaller(CHECKSUM)
          .setResponseMarshaller(CHECKSUM)
          .build();

  @Test
  void oneGibibyteMessage() throws Exception {
    ServerServiceDefinition service = ServerServiceDefinition.builder("grpcshm.test.Big")
        .addMethod(SERVER_SIDE, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(req);
          obs.onCompleted();
        }))
        .build();
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(Integer.MAX_VALUE)
        .addService(service).build().start();
    ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).maxInboundMessageSize(Integer.MAX_VALUE).build();
    try {
      Virtual request = new Virtual(ONE_GIB, 42);
      long[] answer = ClientCalls.blockingUnaryCall(ch, CLIENT_SIDE,
          CallOptions.DEFAULT.withDeadlineAfter(120, TimeUnit.SECONDS), request);
      assertEquals(ONE_GIB, answer[1], "bytes the server parsed");
      assertEquals(expectedCrc(request), answer[0], "checksum of what the server read");
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static long expectedCrc(Virtual v) throws IOException {
    CRC32 crc = new CRC32();
    byte[] chunk = new byte[1 << 20];
    try (GeneratedStream s = new GeneratedStream(v)) {
      int n;
      while ((n = s.read(chunk, 0, chunk.length)) > 0) {
        crc.update(chunk, 0, n);
      }
    }
    return crc.getValue();
  }

  /** Deterministic pseudo-random bytes, known length (so grpc frames it in one allocation). */
  static final class GeneratedStream extends InputStream implements io.grpc.KnownLength {
    private final SplittableRandom random;
    private int remaining;

    GeneratedStream(Virtual v) {
      this.random = new SplittableRandom(v.seed());
      this.remaining = v.size();
    }

    @Override
    public int available() {
      return remaining;
    }

    @Override
    public int read() {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (remaining == 0) {
        return -1;
      }
      int n = Math.min(len, remaining) & ~7;
      if (n == 0) {
        n = Math.min(len, remaining);
        for (int i = 0; i < n; i++) {
          b[off + i] = (byte) random.nextInt();
        }
      } else {
        for (int i = 0; i < n; i += 8) {
          long x = random.nextLong();
          for (int j = 0; j < 8; j++) {
            b[off + i + j] = (byte) (x >>> (8 * j));
          }
        }
      }
      remaining -= n;
      return n;
    }
  }
}
