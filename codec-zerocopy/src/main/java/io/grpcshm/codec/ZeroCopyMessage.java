package io.grpcshm.codec;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import java.util.Objects;

/**
 * A handle on a message parsed by a {@link ZeroCopyMarshaller}, to give its transport memory back
 * when the application is done with it. Use it in try-with-resources around the code that reads
 * the message:
 *
 * <pre>{@code
 * public void upload(Blob request, StreamObserver<Ack> responses) {
 *   try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
 *     store(blob.get().getPayload());   // reads shared memory in place
 *   }                                   // memory goes back to the sender here
 *   responses.onNext(Ack.getDefaultInstance());
 *   responses.onCompleted();
 * }
 * }</pre>
 *
 * <p><b>Contract.</b> A message whose {@code ByteString}s alias transport memory holds one lease
 * on that memory. The lease ends at the first {@link #close()} of any handle on the message, or —
 * safety net, counted in {@link ZeroCopyStats#reclaimedByCleaner()} — when neither the message,
 * nor any {@code ByteString} taken from it, nor any handle is reachable. After the lease ends:
 * <ul>
 *   <li>{@link #get()} on every handle of that message throws {@link IllegalStateException}, and
 *       so does {@link #of} followed by {@code get()}: through this API a released message cannot
 *       be reached;
 *   <li>a {@code ByteString} kept from before throws {@link IllegalStateException} on the reads
 *       protobuf does through the {@code ByteBuffer} API ({@code byteAt}, {@code copyTo},
 *       {@code toByteArray}, {@code toStringUtf8}, {@code substring(..).toByteArray()},
 *       {@code newInput}, {@code asReadOnlyByteBuffer()} reads, {@code equals}, {@code hashCode},
 *       {@code writeTo});
 *   <li>it is <b>not</b> guarded on protobuf's {@code sun.misc.Unsafe} fast paths for direct
 *       buffers: {@code isValidUtf8()}, {@code newCodedInput()}, {@code parseFrom(ByteString)}
 *       of any parser (e.g. {@code BytesValue.parseFrom(bytes)}) and {@code Any.unpack()} of an
 *       {@code Any} holding the alias. Those read raw addresses: they never crash the process,
 *       but see whatever the transport memory holds now (another call's bytes once it was
 *       reused; zeros once the connection is gone). Do not keep aliased values past
 *       {@code close()}; copy what must outlive it before closing ({@link #copy()} for the
 *       whole message).
 * </ul>
 * Messages that alias nothing (stock transports, small messages, the in-process transport) get a
 * handle too; closing it only makes {@link #get()} throw, for uniform code.
 *
 * <p>Handles are thread-safe; {@link #close()} is idempotent. Closing while another thread reads
 * an aliased field makes that read throw rather than return reused bytes.
 */
public final class ZeroCopyMessage<T> implements AutoCloseable {
  private final T message;
  private final Lease lease;
  private volatile boolean closed;

  private ZeroCopyMessage(T message, Lease lease) {
    this.message = message;
    this.lease = lease;
  }

  /** A handle on {@code message}, which may or may not alias transport memory. */
  public static <T> ZeroCopyMessage<T> of(T message) {
    Objects.requireNonNull(message, "message");
    return new ZeroCopyMessage<>(message, LeaseRegistry.find(message));
  }

  /**
   * The message.
   *
   * @throws IllegalStateException if this handle was closed or the message's transport memory
   *     was released through another handle
   */
  public T get() {
    if (closed || (lease != null && lease.isReleased())) {
      throw new IllegalStateException(
          "zero-copy message released: its bytes went back to the transport");
    }
    return message;
  }

  /**
   * A copy of the message on the heap, independent of transport memory, for what must outlive
   * {@link #close()}. Returns the message itself if it aliases nothing. Every nested
   * {@code bytes} field is copied too (copying only the field you read would leave the others
   * aliased).
   *
   * @throws IllegalStateException if the message was already released
   */
  @SuppressWarnings("unchecked")
  public T copy() {
    T m = get();
    if (lease == null || !(m instanceof MessageLite lite)) {
      return m;
    }
    try {
      // Serialise through the guarded ByteBuffer API, parse from a private array (no aliasing).
      T copy = (T) lite.getParserForType().parseFrom(lite.toByteArray());
      get(); // released meanwhile by another thread? then the bytes may be torn: fail
      return copy;
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("re-parsing an aliased message failed", e);
    }
  }

  /** True if the message still reads transport memory in place (false once released). */
  public boolean isAliased() {
    return lease != null && !lease.isReleased();
  }

  /** Releases the message's transport memory (if any) and invalidates its aliased bytes. */
  @Override
  public void close() {
    closed = true;
    if (lease != null) {
      lease.release();
    }
  }

  @Override
  public String toString() {
    return "ZeroCopyMessage{" + message.getClass().getName()
        + (lease == null ? ", not aliased" : lease.isReleased() ? ", released" : ", aliased")
        + (closed ? ", closed" : "") + "}";
  }
}
