package io.grpcshm.examples;

import io.grpc.HasByteBuffer;
import io.grpc.MethodDescriptor;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.zip.CRC32C;

/**
 * Sends a byte[] like {@link BytesMarshaller}; parses a request the way a server that consumes a
 * large upload <em>in place</em> would: it reads every byte (a CRC32C over the whole payload)
 * straight from the transport's buffers when the stream offers them ({@link HasByteBuffer}: Netty's
 * receive buffers, grpc-shm's shared memory), and through a small reused buffer otherwise (the
 * in-process transport hands over the sender's stream). What it "parses" is
 * {@link EchoService#checksumAck}, so the client checks that every byte arrived intact.
 */
final class InPlaceChecksumMarshaller implements MethodDescriptor.Marshaller<byte[]> {
  static final InPlaceChecksumMarshaller INSTANCE = new InPlaceChecksumMarshaller();
  private static final ThreadLocal<byte[]> CHUNK = ThreadLocal.withInitial(() -> new byte[1 << 18]);

  private InPlaceChecksumMarshaller() {}

  @Override
  public InputStream stream(byte[] value) {
    return BytesMarshaller.INSTANCE.stream(value);
  }

  @Override
  public byte[] parse(InputStream stream) {
    try {
      int length = stream.available();
      CRC32C crc = new CRC32C();
      long read = 0;
      if (stream instanceof HasByteBuffer h && h.byteBufferSupported()) {
        ByteBuffer view;
        while (stream.available() > 0 && (view = h.getByteBuffer()) != null) {
          int n = view.remaining();
          crc.update(view);
          read += stream.skip(n);
        }
      }
      byte[] chunk = CHUNK.get();
      int n;
      while ((n = stream.read(chunk, 0, chunk.length)) > 0) {
        crc.update(chunk, 0, n);
        read += n;
      }
      if (read != length) {
        throw new IOException("stream announced " + length + " bytes, gave " + read);
      }
      return EchoService.checksumAck(length, crc.getValue());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
