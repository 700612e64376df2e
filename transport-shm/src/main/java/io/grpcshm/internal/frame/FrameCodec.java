package io.grpcshm.internal.frame;

import io.grpc.InternalMetadata;
import io.grpc.Metadata;
import io.grpc.Status;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Encodes and decodes frame bodies (the part after the 12-byte record header). Bodies are decoded
 * from a private heap copy of the record, so each field is read once; every length is checked
 * against what remains before it is used.
 *
 * <pre>
 *   metadata block  count u32, then count × (nameLen u32, name, valueLen u32, value)
 *                   names are lowercase ASCII; "-bin" values are raw bytes
 *   REQUEST_HEADERS pathLen u16, path, authorityLen u16, authority, metadata block
 *   DATA_INLINE     the payload bytes (the rest of the record)
 *   RESPONSE_HEADERS / TRAILERS  metadata block (TRAILERS carry grpc-status / grpc-message)
 *   DATA_BLOCK      segmentId u32, length u32, offset u64
 *   RST_STREAM      code u32, descLen u32, description (UTF-8)
 *   WINDOW_UPDATE   delta i32, must be positive
 *   RELEASE         segmentId u32, reserved u32, offset u64
 *   PING/PING_ACK   payload u64
 *   GOAWAY          lastStreamId u32, code u32, descLen u32, description
 * </pre>
 */
public final class FrameCodec {
  private FrameCodec() {}

  public static final int MAX_DESCRIPTION = 8192;
  public static final int MAX_METADATA_ENTRIES = 4096;
  public static final int METADATA_ENTRY_OVERHEAD = 32; // as HTTP/2 counts header list size

  public static ByteBuffer newBody(int capacity) {
    return ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Scratch bodies up to this size are kept per thread; larger ones are allocated each time. */
  private static final int MAX_CACHED_SCRATCH = 64 * 1024;
  /** First scratch body of a thread: most headers fit, larger ones grow it once. */
  private static final int INITIAL_SCRATCH = 1024;
  private static final ThreadLocal<ByteBuffer> SCRATCH =
      ThreadLocal.withInitial(() -> newBody(INITIAL_SCRATCH));

  /**
   * The calling thread's reusable body buffer (cleared, at least {@code capacity} bytes). Valid
   * until the thread's next call: the connection's send copies the body before returning,
   * so headers and block references are encoded here without an allocation per frame.
   */
  public static ByteBuffer scratchBody(int capacity) {
    ByteBuffer b = SCRATCH.get();
    if (b.capacity() < capacity) {
      b = newBody(capacity);
      if (capacity <= MAX_CACHED_SCRATCH) {
        SCRATCH.set(b);
      }
    }
    return b.clear();
  }

  /** Serialised metadata and its size as grpc's limits count it. */
  public record EncodedMetadata(byte[][] entries, int bodyLength, int listSize) {}

  public static EncodedMetadata prepare(Metadata metadata) {
    byte[][] entries = InternalMetadata.serialize(metadata);
    int body = FrameLayout.METADATA_COUNT_BYTES;
    int listSize = 0;
    for (int i = 0; i + 1 < entries.length; i += 2) {
      body += FrameLayout.METADATA_ENTRY_LENGTHS_BYTES + entries[i].length + entries[i + 1].length;
      listSize += entries[i].length + entries[i + 1].length + METADATA_ENTRY_OVERHEAD;
    }
    return new EncodedMetadata(entries, body, listSize);
  }

  public static void putMetadata(ByteBuffer out, EncodedMetadata md) {
    out.putInt(md.entries().length / 2);
    for (int i = 0; i + 1 < md.entries().length; i += 2) {
      out.putInt(md.entries()[i].length).put(md.entries()[i]);
      out.putInt(md.entries()[i + 1].length).put(md.entries()[i + 1]);
    }
  }

  /**
   * Request metadata as the server reads it: {@code metadata} is null and {@code problem} is the
   * status to fail the stream with when the block is well framed but breaks a rule about its
   * content: more than {@link #MAX_METADATA_ENTRIES} entries (RESOURCE_EXHAUSTED, a size limit)
   * or an invalid name (INTERNAL, as grpc reads HTTP/2's malformed-request PROTOCOL_ERROR). A
   * block that cannot be framed (count beyond the body, a length past the end) is still a {@link
   * ProtocolException}. The whole block is consumed either way.
   */
  public record RequestMetadata(Metadata metadata, int listSize, Status problem) {}

  public static RequestMetadata getRequestMetadata(ByteBuffer in) {
    return decodeMetadata(in, false, "Request", null);
  }

  /**
   * The same, sharing repeated names and values through {@code arrays} (the connection's) where
   * the body is array-backed.
   */
  public static RequestMetadata getRequestMetadata(ByteBuffer in, MetadataArrays arrays) {
    return decodeMetadata(in, false, "Request", arrays);
  }

  /** The same leniency for the client: bad response metadata fails its stream, not the rest. */
  public static RequestMetadata getResponseMetadata(ByteBuffer in) {
    return decodeMetadata(in, false, "Response", null);
  }

  public static RequestMetadata getResponseMetadata(ByteBuffer in, MetadataArrays arrays) {
    return decodeMetadata(in, false, "Response", arrays);
  }

  private static RequestMetadata decodeMetadata(
      ByteBuffer in, boolean strict, String kind, MetadataArrays arrays) {
    if (arrays != null && !in.hasArray()) {
      arrays = null;
    }
    int count = in.getInt();
    if (count < 0 || count > in.remaining() / FrameLayout.METADATA_ENTRY_LENGTHS_BYTES) {
      throw new ProtocolException("metadata entry count " + count + " out of bounds");
    }
    Status problem = null;
    if (count > MAX_METADATA_ENTRIES) {
      String why = "metadata entry count " + count + " out of bounds";
      if (strict) {
        throw new ProtocolException(why);
      }
      problem = Status.RESOURCE_EXHAUSTED.withDescription(
          kind + " metadata has " + count + " entries, more than " + MAX_METADATA_ENTRIES);
    }
    // Entries are kept only while the block is acceptable; the rest is just walked (and checked).
    byte[][] entries = problem == null ? new byte[count * 2][] : null;
    int listSize = 0;
    for (int i = 0; i < count; i++) {
      int nameLen = getLength(in, "metadata name");
      if (entries != null) {
        byte[] name;
        if (arrays != null) {
          int from = in.arrayOffset() + in.position();
          in.position(in.position() + nameLen);
          name = isValidName(in.array(), from, nameLen) ? arrays.name(in.array(), from, nameLen)
              : null;
        } else {
          name = new byte[nameLen];
          in.get(name);
          if (!isValidName(name, 0, nameLen)) {
            name = null;
          }
        }
        if (name == null) {
          if (strict) {
            throw new ProtocolException("invalid metadata name");
          }
          problem = Status.INTERNAL.withDescription(
              kind + " metadata name is not lowercase [a-z0-9-_.]");
          entries = null;
        } else {
          entries[2 * i] = name;
        }
      } else {
        in.position(in.position() + nameLen);
      }
      int valueLen = getLength(in, "metadata value");
      if (entries != null) {
        byte[] value;
        if (arrays != null) {
          int from = in.arrayOffset() + in.position();
          in.position(in.position() + valueLen);
          byte[] name = entries[2 * i];
          value = arrays.value(in.array(), from, valueLen,
              isBinaryName(name) || Arrays.equals(name, GRPC_TIMEOUT));
        } else {
          value = new byte[valueLen];
          in.get(value);
        }
        entries[2 * i + 1] = value;
      } else {
        in.position(in.position() + valueLen);
      }
      listSize += nameLen + valueLen + METADATA_ENTRY_OVERHEAD;
    }
    return new RequestMetadata(
        entries == null ? null : InternalMetadata.newMetadata(count, entries), listSize, problem);
  }

  private static final byte[] GRPC_TIMEOUT = "grpc-timeout".getBytes(StandardCharsets.US_ASCII);

  private static boolean isBinaryName(byte[] name) {
    int n = name.length;
    return n >= 4 && name[n - 4] == '-' && name[n - 3] == 'b' && name[n - 2] == 'i'
        && name[n - 1] == 'n';
  }

  private static boolean isValidName(byte[] array, int from, int length) {
    if (length == 0) {
      return false;
    }
    for (int i = from; i < from + length; i++) {
      byte c = array[i];
      boolean ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'
          || c == '.';
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  private static int getLength(ByteBuffer in, String what) {
    int len = in.getInt();
    if (len < 0 || len > in.remaining()) {
      throw new ProtocolException(what + " length " + len + " exceeds frame");
    }
    return len;
  }

  /** REQUEST_HEADERS body length for these path, authority and metadata. */
  public static int requestHeadersLength(byte[] path, byte[] authority, EncodedMetadata md) {
    return 2 * FrameLayout.STRING16_LENGTH_BYTES + path.length + authority.length
        + md.bodyLength();
  }

  public static void putString16(ByteBuffer out, byte[] utf8) {
    out.putShort((short) utf8.length).put(utf8);
  }

  public static byte[] encodeStatus(Status status) {
    byte[] desc = status.getDescription() == null
        ? new byte[0]
        : status.getDescription().getBytes(StandardCharsets.UTF_8);
    int len = Math.min(desc.length, MAX_DESCRIPTION);
    ByteBuffer b = newBody(FrameLayout.STATUS_FIXED_BYTES + len);
    b.putInt(status.getCode().value()).putInt(len).put(desc, 0, len);
    return b.array();
  }

  public static Status getStatus(ByteBuffer in) {
    int code = in.getInt();
    int len = in.getInt();
    if (len < 0 || len > in.remaining() || len > MAX_DESCRIPTION) {
      throw new ProtocolException("status description length " + len + " out of bounds");
    }
    byte[] desc = new byte[len];
    in.get(desc);
    Status status = Status.fromCodeValue(code);
    return len == 0 ? status : status.withDescription(new String(desc, StandardCharsets.UTF_8));
  }

  public static byte[] encodeGoAway(int lastStreamId, Status status) {
    byte[] st = encodeStatus(status);
    ByteBuffer b = newBody(FrameLayout.GOAWAY_LAST_STREAM_BYTES + st.length);
    b.putInt(lastStreamId).put(st);
    return b.array();
  }
}
