package io.grpcshm.internal.frame;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Decodes the short strings every request repeats (method path, authority) without allocating
 * when they were seen recently: a small direct-mapped cache from UTF-8 bytes to the decoded
 * string. One thread only (the connection's event loop).
 */
public final class DecodedStrings {
  private static final int SLOTS = 64; // a power of two
  /** Longer strings are decoded each time (a path is usually well under this). */
  private static final int MAX_CACHED_LENGTH = 256;

  private final byte[][] keys = new byte[SLOTS][];
  private final String[] values = new String[SLOTS];

  /** Reads a 16-bit length and that many UTF-8 bytes from {@code in} (array-backed). */
  public String getString16(ByteBuffer in, String what) {
    return getString16(in, what, 0);
  }

  /**
   * Like {@link #getString16(ByteBuffer, String)}, without the first {@code skip} characters
   * (a path's leading '/'): the cached value is the part wanted, so no substring per call. One
   * instance must always be asked with the same {@code skip}.
   */
  public String getString16(ByteBuffer in, String what, int skip) {
    int len = in.getShort() & 0xffff;
    if (len > in.remaining()) {
      throw new ProtocolException(what + " length " + len + " exceeds frame");
    }
    byte[] array = in.array();
    int from = in.arrayOffset() + in.position();
    in.position(in.position() + len);
    if (len > MAX_CACHED_LENGTH) {
      return decode(array, from, len, skip);
    }
    int hash = len;
    for (int i = from; i < from + len; i++) {
      hash = 31 * hash + array[i];
    }
    int slot = (hash ^ (hash >>> 16)) & (SLOTS - 1);
    byte[] key = keys[slot];
    if (key != null && Arrays.equals(key, 0, key.length, array, from, from + len)) {
      return values[slot];
    }
    String value = decode(array, from, len, skip);
    keys[slot] = Arrays.copyOfRange(array, from, from + len);
    values[slot] = value;
    return value;
  }

  private static String decode(byte[] array, int from, int len, int skip) {
    String s = new String(array, from, len, StandardCharsets.UTF_8);
    return skip == 0 ? s : s.substring(Math.min(skip, s.length()));
  }
}
