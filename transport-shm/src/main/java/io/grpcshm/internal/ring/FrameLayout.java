package io.grpcshm.internal.ring;

/**
 * The 12-byte header every ring record starts with, and the record types.
 *
 * <pre>
 *   0  length    i32  whole record in bytes including this header, before alignment padding
 *   4  type      u8   one of the TYPE_ constants
 *   5  flags     u8   type-specific (FLAG_END_STREAM for data)
 *   6  reserved  u16  zero
 *   8  streamId  i32  0 for connection-level records
 *   12 body
 * </pre>
 *
 * <p>All multi-byte fields are little-endian (the native order of every host that can share
 * memory with us). Bodies are specified per type in docs/PROTOCOL.md and in the transport's
 * {@code FrameCodec}.
 */
public final class FrameLayout {
  private FrameLayout() {}

  public static final int LENGTH_OFFSET = 0;
  public static final int TYPE_OFFSET = 4;
  public static final int FLAGS_OFFSET = 5;
  public static final int RESERVED_OFFSET = 6;
  public static final int STREAM_ID_OFFSET = 8;
  public static final int HEADER_LENGTH = 12;

  public static final int TYPE_PADDING = 0;
  public static final int TYPE_REQUEST_HEADERS = 1;
  public static final int TYPE_RESPONSE_HEADERS = 2;
  public static final int TYPE_DATA_INLINE = 3;
  public static final int TYPE_DATA_BLOCK = 4;
  public static final int TYPE_TRAILERS = 5;
  public static final int TYPE_RST_STREAM = 6;
  public static final int TYPE_WINDOW_UPDATE = 7;
  public static final int TYPE_RELEASE = 8;
  public static final int TYPE_PING = 9;
  public static final int TYPE_PING_ACK = 10;
  public static final int TYPE_GOAWAY = 11;
  public static final int TYPE_MAX = 11;

  public static final int FLAG_END_STREAM = 0x1;

  public static String typeName(int type) {
    return switch (type) {
      case TYPE_PADDING -> "PADDING";
      case TYPE_REQUEST_HEADERS -> "REQUEST_HEADERS";
      case TYPE_RESPONSE_HEADERS -> "RESPONSE_HEADERS";
      case TYPE_DATA_INLINE -> "DATA_INLINE";
      case TYPE_DATA_BLOCK -> "DATA_BLOCK";
      case TYPE_TRAILERS -> "TRAILERS";
      case TYPE_RST_STREAM -> "RST_STREAM";
      case TYPE_WINDOW_UPDATE -> "WINDOW_UPDATE";
      case TYPE_RELEASE -> "RELEASE";
      case TYPE_PING -> "PING";
      case TYPE_PING_ACK -> "PING_ACK";
      case TYPE_GOAWAY -> "GOAWAY";
      default -> "UNKNOWN(" + type + ")";
    };
  }
}
