package io.grpcshm.internal.frame;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.InternalMetadata;
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
    roundTrip(null);
    roundTrip(new MetadataArrays());
  }

  private static void roundTrip(MetadataArrays arrays) {
    Metadata md = new Metadata();
    md.put(ASCII, "hello world");
    md.put(ASCII, "second value");
    md.put(BINARY, new byte[] {0, (byte) 0xff, 10, 13});
    FrameCodec.EncodedMetadata enc = FrameCodec.prepare(md);
    ByteBuffer body = FrameCodec.newBody(enc.bodyLength());
    FrameCodec.putMetadata(body, enc);
    body.flip();
    FrameCodec.RequestMetadata dec = FrameCodec.getRequestMetadata(body, arrays);
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
  void repeatedEntriesShareArraysButBinaryValuesNeverDo() {
    MetadataArrays arrays = new MetadataArrays();
    byte[][] first = decodeEntries(arrays);
    byte[][] second = decodeEntries(arrays);
    assertSame(first[0], second[0], "name");
    assertSame(first[1], second[1], "ASCII value");
    assertSame(first[2], second[2], "binary name");
    assertNotSame(first[3], second[3], "a binary value goes to the application as it is");
    assertSame(first[4], second[4], "grpc-timeout's name");
    assertNotSame(first[5], second[5], "grpc-timeout's value changes every call: not cached");
  }

  private static byte[][] decodeEntries(MetadataArrays arrays) {
    Metadata md = new Metadata();
    md.put(ASCII, "gzip");
    md.put(BINARY, new byte[] {0, 1, 2});
    md.put(Metadata.Key.of("grpc-timeout", Metadata.ASCII_STRING_MARSHALLER), "1S");
    FrameCodec.EncodedMetadata enc = FrameCodec.prepare(md);
    ByteBuffer body = FrameCodec.newBody(enc.bodyLength());
    FrameCodec.putMetadata(body, enc);
    body.flip();
    return InternalMetadata.serialize(FrameCodec.getResponseMetadata(body, arrays).metadata());
  }

  @Test
  void namesAreValidatedWhenArraysAreShared() {
    MetadataArrays arrays = new MetadataArrays();
    // "UPPER" arrives as a value first (values may be anything), then as a name: refused.
    ByteBuffer first = FrameCodec.newBody(32).putInt(1).putInt(1).put((byte) 'a')
        .putInt(5).put("UPPER".getBytes());
    first.flip();
    assertEquals(null, FrameCodec.getRequestMetadata(first, arrays).problem());
    ByteBuffer second = FrameCodec.newBody(32).putInt(1).putInt(5).put("UPPER".getBytes())
        .putInt(1).put((byte) 'v');
    second.flip();
    FrameCodec.RequestMetadata bad = FrameCodec.getRequestMetadata(second, arrays);
    assertEquals(null, bad.metadata());
    assertEquals(Status.Code.INTERNAL, bad.problem().getCode());
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
