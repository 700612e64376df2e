package io.grpcshm.examples;

import io.grpc.MethodDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;

/**
 * Sends a byte[] like {@link BytesMarshaller}, but parses a request the way a server that
 * processes a large upload as a stream would: through a small reused buffer, never
 * materialising the payload on the heap. What it "parses" is the {@link EchoService#ack} of the
 * bytes, computed on the fly, so the client can still check that every byte arrived intact in
 * the sampled positions.
 *
 * <p>This separates the transport's cost from the JVM's cost of allocating and zeroing a fresh
 * 16 MiB array per call, which dominates a materialising marshaller on every transport.
 */
final class StreamingDigestMarshaller implements MethodDescriptor.Marshaller<byte[]> {
  static final StreamingDigestMarshaller INSTANCE = new StreamingDigestMarshaller();
  private static final int CHUNK = 256 * 1024;
  private static final ThreadLocal<byte[]> BUFFER = ThreadLocal.withInitial(() -> new byte[CHUNK]);

  private StreamingDigestMarshaller() {}

  @Override
  public InputStream stream(byte[] value) {
    return BytesMarshaller.INSTANCE.stream(value);
  }

  @Override
  public byte[] parse(InputStream stream) {
    try {
      int length = stream.available();
      int stride = Math.max(1, length / 4096);
      long fingerprint = 1469598103934665603L;
      ByteBuffer ack = ByteBuffer.allocate(EchoService.ACK_BYTES).putInt(length).putLong(0);
      int headBytes = Math.min(length, ack.remaining());
      byte[] chunk = BUFFER.get();
      long offset = 0;
      long nextSample = 0;
      byte last = 0;
      int n;
      while ((n = stream.read(chunk, 0, chunk.length)) > 0) {
        if (offset < headBytes) {
          ack.put(chunk, 0, (int) Math.min(n, headBytes - offset));
        }
        while (nextSample < offset + n) {
          fingerprint = (fingerprint ^ chunk[(int) (nextSample - offset)]) * 1099511628211L;
          nextSample += stride;
        }
        last = chunk[n - 1];
        offset += n;
      }
      if (offset != length) {
        throw new IOException("stream announced " + length + " bytes, gave " + offset);
      }
      if (length > 0) {
        fingerprint = (fingerprint ^ last) * 1099511628211L;
      }
      ack.putLong(4, fingerprint);
      return ack.array();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
