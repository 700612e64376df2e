package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import io.grpc.StatusRuntimeException;
import io.grpcshm.codec.TestMessages.TransportStream;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.Counters;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import org.junit.jupiter.api.Test;

/** The marshaller against a stand-in transport stream: paths taken, send path, errors. */
class ZeroCopyMarshallerTest {
  private final ZeroCopyMarshaller<Blob> marshaller = ZeroCopyMarshaller.of(Blob.getDefaultInstance());

  @Test
  void streamIsDrainableKnownLengthAndWritesTheExactBytes() throws Exception {
    Blob blob = TestMessages.blob(100_000, 20, 1);
    InputStream stream = marshaller.stream(blob);
    assertInstanceOf(Drainable.class, stream);
    assertInstanceOf(KnownLength.class, stream);
    assertEquals(blob.getSerializedSize(), stream.available());
    CountingOutput target = new CountingOutput();
    assertEquals(blob.getSerializedSize(), ((Drainable) stream).drainTo(target));
    assertArrayEquals(blob.toByteArray(), target.bytes.toByteArray());
    // The 100 kB payload went to the target in one write (after topping up the coded stream's
    // 4 KiB buffer), not through a payload-sized intermediate array and not in small pieces.
    assertTrue(target.largestWrite >= 100_000 - 4096, "largest write " + target.largestWrite);
    assertEquals(0, stream.available());
  }

  @Test
  void streamCanAlsoBeRead() throws Exception {
    Blob blob = TestMessages.blob(1000, 3, 2);
    assertArrayEquals(blob.toByteArray(), marshaller.stream(blob).readAllBytes());
  }

  @Test
  void ownStreamIsPassedThroughAsTheSameObject() {
    Blob blob = TestMessages.blob(10, 1, 3);
    long before = marshaller.stats().passedThrough();
    assertSame(blob, marshaller.parse(marshaller.stream(blob)));
    assertEquals(before + 1, marshaller.stats().passedThrough());
  }

  @Test
  void plainStreamIsCopied() {
    Blob blob = TestMessages.blob(100_000, 5, 4);
    long before = marshaller.stats().copied();
    Blob parsed = marshaller.parse(new ByteArrayInputStream(blob.toByteArray()));
    assertEquals(blob, parsed);
    assertFalse(TestMessages.isDirect(parsed.getPayload()));
    assertEquals(before + 1, marshaller.stats().copied());
  }

  @Test
  void largeDirectBufferIsAliased() {
    Blob blob = TestMessages.blob(200_000, 50, 5);
    TransportStream stream = TransportStream.of(blob.toByteArray());
    long before = marshaller.stats().aliased();
    Blob parsed = marshaller.parse(stream);
    stream.close(); // what grpc does after parse: must not release the detached memory
    assertEquals(0, stream.ownerCloses.get());
    assertEquals(before + 1, marshaller.stats().aliased());
    assertTrue(TestMessages.isDirect(parsed.getPayload()), "payload aliases the buffer");
    assertEquals(blob, parsed);
    try (ZeroCopyMessage<Blob> handle = ZeroCopyMessage.of(parsed)) {
      assertTrue(handle.isAliased());
    }
    assertEquals(1, stream.ownerCloses.get());
  }

  @Test
  void smallMessageIsParsedInPlaceAndNotHeld() {
    Blob blob = TestMessages.blob(1000, 5, 6);
    TransportStream stream = TransportStream.of(blob.toByteArray());
    long before = marshaller.stats().parsedInPlace();
    Blob parsed = marshaller.parse(stream);
    assertEquals(before + 1, marshaller.stats().parsedInPlace());
    assertFalse(TestMessages.isDirect(parsed.getPayload()), "copied out of the buffer");
    assertFalse(ZeroCopyMessage.of(parsed).isAliased());
    stream.close(); // grpc closes it; the memory is reused; the message must not care
    assertEquals(blob, parsed);
  }

  @Test
  void typeWithoutBytesFieldsIsNeverLeased() {
    ZeroCopyMarshaller<Counters> counters = ZeroCopyMarshaller.of(Counters.getDefaultInstance(), 0);
    Counters.Builder b = Counters.newBuilder().setNote("n");
    for (int i = 0; i < 50_000; i++) {
      b.addValues(i * 31L);
    }
    Counters message = b.build();
    TransportStream stream = TransportStream.of(message.toByteArray());
    Counters parsed = counters.parse(stream);
    assertEquals(1, counters.stats().parsedInPlace());
    assertEquals(0, counters.stats().aliased());
    stream.close();
    assertEquals(message, parsed);
  }

  @Test
  void thresholdZeroAliasesSmallMessages() {
    ZeroCopyMarshaller<Blob> eager = ZeroCopyMarshaller.of(Blob.getDefaultInstance(), 0);
    Blob blob = TestMessages.blob(16, 1, 7);
    Blob parsed = eager.parse(TransportStream.of(blob.toByteArray()));
    assertEquals(1, eager.stats().aliased());
    try (ZeroCopyMessage<Blob> handle = ZeroCopyMessage.of(parsed)) {
      assertEquals(blob, handle.get());
    }
  }

  @Test
  void emptyMessageParsesToDefault() {
    assertEquals(Blob.getDefaultInstance(), marshaller.parse(TransportStream.of(new byte[0])));
    assertEquals(Blob.getDefaultInstance(), marshaller.parse(new ByteArrayInputStream(new byte[0])));
  }

  @Test
  void garbageIsInternalErrorAndReleasesTheMemory() {
    byte[] garbage = new byte[100_000];
    garbage[0] = (byte) 0x0a; // field 1, length-delimited, then a truncated varint length
    garbage[1] = (byte) 0xff;
    garbage[2] = (byte) 0xff;
    garbage[3] = (byte) 0xff;
    garbage[4] = (byte) 0xff;
    garbage[5] = (byte) 0x0f;
    TransportStream stream = TransportStream.of(garbage);
    long outstanding = marshaller.stats().outstanding();
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> marshaller.parse(stream));
    assertEquals(io.grpc.Status.Code.INTERNAL, e.getStatus().getCode());
    assertEquals(1, stream.ownerCloses.get(), "detached memory released on failure");
    assertEquals(outstanding, marshaller.stats().outstanding());
  }

  @Test
  void aliasedPayloadIsNotAHeapCopy() {
    Blob blob = TestMessages.blob(300_000, 0, 8);
    Blob parsed = marshaller.parse(TransportStream.of(blob.toByteArray()));
    try (ZeroCopyMessage<Blob> handle = ZeroCopyMessage.of(parsed)) {
      ByteString payload = handle.get().getPayload();
      assertTrue(TestMessages.isDirect(payload));
      assertNotSame(blob.getPayload(), payload);
      assertEquals(TestMessages.crc(blob.getPayload()), TestMessages.crc(payload));
    }
  }

  private static final class CountingOutput extends OutputStream {
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    int largestWrite;

    @Override
    public void write(int b) {
      bytes.write(b);
      largestWrite = Math.max(largestWrite, 1);
    }

    @Override
    public void write(byte[] b, int off, int len) {
      bytes.write(b, off, len);
      largestWrite = Math.max(largestWrite, len);
    }
  }
}
