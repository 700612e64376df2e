package io.grpcshm.internal.frame;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Metadata;
import io.grpc.Status;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class FrameCodecTest {
  private static final Metadata.Key<String> ASCII =
      Metadata.Key.of("x-ascii", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<byte[]> BINARY =
      Metadata.Key.of("x-data-bin", Metadata.BINARY_BYTE_MARSHALLER);

  @Test
  void metadataRoundTripsAsciiAndBinary() {
    Metadata md = new Metadata();
    md.put(ASCII, "hello world");
    md.put(ASCII, "second value");
    md.put(BINARY, new byte[] {0, (byte) 0xff, 10, 13});
    FrameCodec.EncodedMetadata enc = FrameCodec.prepare(md);
    ByteBuffer body = FrameCodec.newBody(enc.bodyLength());
    FrameCodec.putMetadata(body, enc);
    body.flip();
    FrameCodec.RequestMetadata dec = FrameCodec.getRequestMetadata(body);
    assertEquals(java.util.List.of("hello world", "second value"), iterable(dec.metadata().getAll(ASCII)));
    assertArrayEquals(new byte[] {0, (byte) 0xff, 10, 13}, dec.metadata().get(BINARY));
    assertEquals(enc.listSize(), dec.listSize());
  }

  private static java.util.List<String> iterable(Iterable<String> it) {
    java.util.List<String> l = new java.util.ArrayList<>();
    it.forEach(l::add);
    return l;
  }

  @Test
  void lyingLengthsAreProtocolErrorsAndBadNamesFailTheStream() {
    ByteBuffer count = FrameCodec.newBody(8).putInt(1_000_000).putInt(0);
    count.flip();
    assertThrows(ProtocolException.class, () -> FrameCodec.getResponseMetadata(count));
    ByteBuffer nameLen = FrameCodec.newBody(16).putInt(1).putInt(9999).putInt(0).putInt(0);
    nameLen.flip();
    assertThrows(ProtocolException.class, () -> FrameCodec.getResponseMetadata(nameLen));
    ByteBuffer badName = FrameCodec.newBody(32).putInt(1).putInt(3).put("A\nB".getBytes())
        .putInt(1).put((byte) 'v');
    badName.flip();
    FrameCodec.RequestMetadata bad = FrameCodec.getResponseMetadata(badName);
    assertEquals(null, bad.metadata());
    assertEquals(io.grpc.Status.Code.INTERNAL, bad.problem().getCode());
    assertEquals(0, badName.remaining(), "the whole block consumed");
    ByteBuffer status = FrameCodec.newBody(16).putInt(2).putInt(1 << 30).putInt(0).putInt(0);
    status.flip();
    assertThrows(ProtocolException.class, () -> FrameCodec.getStatus(status));
  }

  @Test
  void statusRoundTrips() {
    byte[] enc = FrameCodec.encodeStatus(Status.CANCELLED.withDescription("bye ✓"));
    Status st = FrameCodec.getStatus(ByteBuffer.wrap(enc).order(java.nio.ByteOrder.LITTLE_ENDIAN));
    assertEquals(Status.Code.CANCELLED, st.getCode());
    assertEquals("bye ✓", st.getDescription());
  }
}
