package io.grpcshm.codec;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Message;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import io.grpc.Drainable;
import io.grpc.KnownLength;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * What {@link ZeroCopyMarshaller#stream} returns: the message itself, serialised only when the
 * transport asks. grpc's framer calls {@link #available()} (known length, so it allocates one
 * buffer of the right size — on grpc-shm a shared-memory extent) and then {@link #drainTo}, which
 * writes with a {@link CodedOutputStream} straight into the framer's stream: the serialised bytes
 * exist only in the target buffer. A transport that passes streams through (in-process) hands
 * this object to the peer's marshaller, which takes the message back without serialising.
 * {@link #read} is the fallback for callers that really read: it serialises once into an array.
 */
final class MessageStream extends InputStream implements Drainable, KnownLength {
  private final Parser<?> parser;
  /** Null once drained or once reading started. */
  private MessageLite message;
  private ByteArrayInputStream partial;

  MessageStream(MessageLite message, Parser<?> parser) {
    this.message = message;
    this.parser = parser;
  }

  /** The unsent message if {@code expected} is the parser it was made for, else null. */
  MessageLite takeMessage(Parser<?> expected) {
    if (parser != expected || message == null) {
      return null;
    }
    MessageLite m = message;
    message = null;
    return m;
  }

  /** The message, still unsent, without taking it (for checks before {@link #takeMessage}). */
  MessageLite peekMessage() {
    return message;
  }

  @Override
  public int drainTo(OutputStream target) throws IOException {
    int written;
    if (message != null) {
      written = message.getSerializedSize();
      if (written < BulkFields.MIN_FIELD_BYTES || !(message instanceof Message full)
          || !BulkFields.write(full, target, bufferSize(written))) {
        // The coded stream buffers at most a few KiB before writing through; large byte fields
        // bypass that buffer and go straight to the target (writeLazy).
        CodedOutputStream out = CodedOutputStream.newInstance(target, bufferSize(written));
        message.writeTo(out);
        out.flush();
      }
      message = null;
    } else if (partial != null) {
      written = (int) partial.transferTo(target);
      partial = null;
    } else {
      written = 0;
    }
    return written;
  }

  /** Protobuf's own choice (its computePreferredBufferSize is not public): ≤ 4 KiB. */
  private static int bufferSize(int messageSize) {
    return Math.max(Math.min(messageSize, 4096), 1);
  }

  @Override
  public int read() {
    if (message != null) {
      startReading();
    }
    return partial == null ? -1 : partial.read();
  }

  @Override
  public int read(byte[] b, int off, int len) {
    if (message != null) {
      startReading();
    }
    if (partial == null) {
      return -1;
    }
    return partial.read(b, off, len);
  }

  private void startReading() {
    partial = new ByteArrayInputStream(message.toByteArray());
    message = null;
  }

  @Override
  public int available() {
    if (message != null) {
      return message.getSerializedSize();
    }
    return partial == null ? 0 : partial.available();
  }
}
