package io.grpcshm.codec;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.UnsafeByteOperations;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Whether this protobuf runtime parses a direct buffer in place and aliases it. Protobuf does so
 * only with its sun.misc.Unsafe-based decoder; without it, {@code newCodedInput()} copies the
 * whole buffer into an array first, and holding transport memory would buy nothing. Probed once
 * by parsing a tiny message, rather than by guessing from the JDK version or flags.
 */
final class AliasSupport {
  static final boolean DIRECT_DECODER = probe();

  private AliasSupport() {}

  private static boolean probe() {
    try {
      // Field 1, wire type 2 (length-delimited), length 3, "abc".
      ByteBuffer direct = ByteBuffer.allocateDirect(5).put(new byte[] {0x0a, 3, 'a', 'b', 'c'});
      direct.flip();
      CodedInputStream in = UnsafeByteOperations.unsafeWrap(direct).newCodedInput();
      in.enableAliasing(true);
      in.readTag();
      ByteString bytes = in.readBytes();
      return bytes.asReadOnlyByteBuffer().isDirect();
    } catch (IOException | RuntimeException | LinkageError e) {
      return false;
    }
  }
}
