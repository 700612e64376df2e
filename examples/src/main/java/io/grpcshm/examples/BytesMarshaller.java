package io.grpcshm.examples;

import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;

/**
 * byte[] messages, marshalled the way grpc's protobuf marshaller handles bytes: the outgoing
 * stream announces its length ({@link KnownLength}) and writes itself in one call
 * ({@link Drainable}); parsing allocates the exact size once when the incoming stream knows its
 * length. Every transport in the benchmark uses this same marshaller.
 */
final class BytesMarshaller implements MethodDescriptor.Marshaller<byte[]> {
  static final BytesMarshaller INSTANCE = new BytesMarshaller();

  private BytesMarshaller() {}

  @Override
  public InputStream stream(byte[] value) {
    return new KnownLengthStream(value);
  }

  @Override
  public byte[] parse(InputStream stream) {
    try {
      if (stream instanceof KnownLength) {
        byte[] message = new byte[stream.available()];
        int read = stream.readNBytes(message, 0, message.length);
        if (read != message.length) {
          throw new IOException("stream announced " + message.length + " bytes, gave " + read);
        }
        return message;
      }
      return stream.readAllBytes(); // unknown length: chunked reads and a final copy
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static final class KnownLengthStream extends ByteArrayInputStream
      implements KnownLength, Drainable {
    KnownLengthStream(byte[] bytes) {
      super(bytes);
    }

    @Override
    public int drainTo(OutputStream target) throws IOException {
      int n = count - pos;
      target.write(buf, pos, n);
      pos = count;
      return n;
    }
  }
}
