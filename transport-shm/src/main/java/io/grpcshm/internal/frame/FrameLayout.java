package io.grpcshm.internal.frame;

import io.grpcshm.internal.ring.RecordLayout;

/**
 * The transport's frames: the 12-byte header every frame starts with (the ring's record header,
 * {@link RecordLayout}, whose spare bytes carry flags and the stream), the frame types, and the
 * fixed body lengths.
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
 * memory with us). Bodies are specified per type in docs/PROTOCOL.md and in {@link FrameCodec}.
 */
public final class FrameLayout {
  private FrameLayout() {}

  public static final int LENGTH_OFFSET = RecordLayout.LENGTH_OFFSET;
  public static final int TYPE_OFFSET = RecordLayout.TYPE_OFFSET;
  public static final int FLAGS_OFFSET = 5;
  public static final int RESERVED_OFFSET = 6;
  public static final int STREAM_ID_OFFSET = 8;
  public static final int HEADER_LENGTH = RecordLayout.HEADER_LENGTH;

  public static final int TYPE_PADDING = RecordLayout.TYPE_PADDING;
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

  /** DATA_BLOCK and RELEASE bodies: segmentId u32, length or reserved u32, offset u64. */
  public static final int BLOCK_REFERENCE_BODY_LENGTH = 16;
  /** PING and PING_ACK bodies: the payload u64. */
  public static final int PING_BODY_LENGTH = 8;
  /** WINDOW_UPDATE bodies: the delta i32. */
  public static final int WINDOW_UPDATE_BODY_LENGTH = 4;

  // Fixed parts of the variable-length bodies (FrameCodec, PROTOCOL.md § frame bodies).
  /** The u16 length before a path or an authority. */
  public static final int STRING16_LENGTH_BYTES = 2;
  /** A metadata block's entry count u32. */
  public static final int METADATA_COUNT_BYTES = 4;
  /** A metadata entry's nameLen u32 and valueLen u32. */
  public static final int METADATA_ENTRY_LENGTHS_BYTES = 8;
  /** A status's code u32 and descLen u32 (RST_STREAM, TRAILERS' status, GOAWAY). */
  public static final int STATUS_FIXED_BYTES = 8;
  /** GOAWAY's lastStreamId u32 before its status. */
  public static final int GOAWAY_LAST_STREAM_BYTES = 4;

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
