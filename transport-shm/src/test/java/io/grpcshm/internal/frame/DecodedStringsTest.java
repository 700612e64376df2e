package io.grpcshm.internal.frame;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class DecodedStringsTest {
  private static ByteBuffer body(String... strings) {
    ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
    b.put(new byte[7]); // strings need not start at the array's beginning
    for (String s : strings) {
      FrameCodec.putString16(b, s.getBytes(StandardCharsets.UTF_8));
    }
    return b.flip().position(7);
  }

  @Test
  void repeatedStringIsDecodedOnceAndReturnedFromTheCache() {
    DecodedStrings strings = new DecodedStrings();
    String first = strings.getString16(body("/grpc.Echo/Unary"), "path");
    String again = strings.getString16(body("/grpc.Echo/Unary"), "path");
    assertEquals("/grpc.Echo/Unary", first);
    assertSame(first, again);
  }

  @Test
  void differentBytesNeverReturnAnotherStringsValue() {
    DecodedStrings strings = new DecodedStrings();
    ByteBuffer in = body("/a/b", "/a/c", "ä/ü", "", "/a/b");
    assertEquals("/a/b", strings.getString16(in, "path"));
    assertEquals("/a/c", strings.getString16(in, "path"));
    assertEquals("ä/ü", strings.getString16(in, "path"));
    assertEquals("", strings.getString16(in, "path"));
    assertEquals("/a/b", strings.getString16(in, "path"));
    // Many distinct strings: slots are overwritten, answers stay right.
    for (int i = 0; i < 1000; i++) {
      assertEquals("/svc/m" + i, strings.getString16(body("/svc/m" + i), "path"));
    }
  }

  @Test
  void longStringsAreDecodedEachTime() {
    DecodedStrings strings = new DecodedStrings();
    String longPath = "/" + "x".repeat(300);
    String a = strings.getString16(body(longPath), "path");
    String b = strings.getString16(body(longPath), "path");
    assertEquals(longPath, a);
    assertEquals(longPath, b);
    assertNotSame(a, b);
  }

  @Test
  void skippedPrefixIsCachedWithoutIt() {
    DecodedStrings methods = new DecodedStrings();
    String first = methods.getString16(body("/svc/Method"), "path", 1);
    assertEquals("svc/Method", first);
    assertSame(first, methods.getString16(body("/svc/Method"), "path", 1));
    assertEquals("", methods.getString16(body("/"), "path", 1));
    assertEquals("", methods.getString16(body(""), "path", 1));
  }

  @Test
  void lengthBeyondTheFrameIsAProtocolError() {
    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    b.putShort((short) 100).put((byte) 'x').flip();
    assertThrows(ProtocolException.class, () -> new DecodedStrings().getString16(b, "path"));
  }
}
