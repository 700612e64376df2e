package io.grpcshm.codec;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.WireFormat;
import io.grpcshm.BulkWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/**
 * Sends a message's large off-heap {@code bytes} fields through grpc-shm's data movers
 * ({@link BulkWriter}): each such field's tag and length go through grpc's stream,
 * then the mover the transport's policy picked copies the field's bytes into shared memory right
 * after them. The large fields are written first, so that asynchronous moves overlap with the
 * serialisation of the rest of the message; protobuf parsers accept fields in any order and the
 * size is the same, so the receiver sees an ordinary message.
 *
 * <p>Only top-level, singular {@code bytes} fields (≥ 16 KiB) of full (descriptor-backed) messages
 * whose value is a direct buffer (wrapped off-heap memory, or a view of shared memory received
 * earlier) qualify; heap arrays gain nothing from a mover, which needs native addresses. When
 * the transport is not grpc-shm, {@link BulkWriter#tryMove} declines and everything is written
 * as usual.
 */
final class BulkFields {
  /**
   * Fields smaller than this are written inline (grpc-shm sends messages this small through its
   * ring anyway). Larger ones are offered to the transport, whose {@code DataMovement} threshold
   * (default 64 KiB) decides which of them the policy sees.
   */
  static final int MIN_FIELD_BYTES = 16 * 1024;

  private BulkFields() {}

  /**
   * Writes {@code message} to {@code target} with its large direct {@code bytes} fields offered
   * to the data movers. Returns false, having written nothing, if the message has none.
   */
  static boolean write(Message message, OutputStream target, int bufferSize) throws IOException {
    FieldDescriptor[] fields = null;
    ByteString[] values = null;
    int count = 0;
    for (FieldDescriptor fd : message.getDescriptorForType().getFields()) {
      if (fd.getType() != FieldDescriptor.Type.BYTES || fd.isRepeated()) {
        continue;
      }
      ByteString value = (ByteString) message.getField(fd);
      if (value.size() < MIN_FIELD_BYTES || !value.asReadOnlyByteBuffer().isDirect()) {
        continue;
      }
      if (fields == null) {
        fields = new FieldDescriptor[4];
        values = new ByteString[4];
      } else if (count == fields.length) {
        fields = java.util.Arrays.copyOf(fields, count * 2);
        values = java.util.Arrays.copyOf(values, count * 2);
      }
      fields[count] = fd;
      values[count++] = value;
    }
    if (count == 0) {
      return false;
    }
    Message.Builder rest = message.toBuilder(); // shallow: ByteStrings are shared, not copied
    for (int i = 0; i < count; i++) {
      rest.clearField(fields[i]);
    }
    Message remainder = rest.build();
    CodedOutputStream out = CodedOutputStream.newInstance(target, bufferSize);
    try {
      for (int i = 0; i < count; i++) {
        BulkWriter.mark();
        out.writeTag(fields[i].getNumber(), WireFormat.WIRETYPE_LENGTH_DELIMITED);
        out.writeUInt32NoTag(values[i].size());
        out.flush();
        ByteBuffer src = values[i].asReadOnlyByteBuffer();
        if (!BulkWriter.tryMove(src)) {
          out.writeRawBytes(values[i]);
        }
      }
      remainder.writeTo(out);
      out.flush();
    } finally {
      BulkWriter.finish();
    }
    return true;
  }
}
