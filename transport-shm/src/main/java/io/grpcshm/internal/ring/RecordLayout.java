package io.grpcshm.internal.ring;

/**
 * What the ring itself reads of a record: every record starts with its length and a type byte,
 * and type 0 marks the padding record that fills the space up to the ring's end so that no
 * record wraps. The rest of the 12-byte header and the body belong to the record's user (the
 * transport's frames, {@code internal/frame/FrameLayout}).
 *
 * <pre>
 *   0  length    i32  whole record in bytes including the header, before alignment padding
 *   4  type      u8   0 = padding; any other value is the user's
 *   5  (7 bytes defined by the record's user)
 *   12 body
 * </pre>
 */
public final class RecordLayout {
  private RecordLayout() {}

  public static final int LENGTH_OFFSET = 0;
  public static final int TYPE_OFFSET = 4;
  /** Smallest record: the header every record carries. */
  public static final int HEADER_LENGTH = 12;

  public static final int TYPE_PADDING = 0;
}
