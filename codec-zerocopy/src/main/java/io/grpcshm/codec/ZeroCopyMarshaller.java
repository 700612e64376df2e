package io.grpcshm.codec;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * A drop-in replacement for {@code ProtoUtils.marshaller(T.getDefaultInstance())} that avoids
 * copies where the transport allows it.
 *
 * <p><b>Send:</b> the returned stream is {@link io.grpc.Drainable} and {@link KnownLength}; the
 * message is serialised by a {@code CodedOutputStream} directly into the buffer the transport
 * gives grpc's framer (no intermediate array of the message's size).
 *
 * <p><b>Receive</b>, in order of preference:
 * <ol>
 *   <li><i>passed through</i>: the in-process transport hands over our own send stream; the
 *       message object is returned as is.
 *   <li><i>aliased</i>: the stream is {@link HasByteBuffer} + {@link Detachable}, the whole message
 *       is in one direct buffer, it is at least {@code aliasThreshold} bytes and its type has
 *       fields that can alias ({@code bytes}, lazily decoded proto2 {@code string}, or unknown
 *       fields are not counted). The stream is detached and the message parsed in place with
 *       aliasing: its {@code ByteString}s are views of transport memory. The memory stays lent
 *       until {@link ZeroCopyMessage#close()} (or, as a safety net, until the message and all its
 *       views are unreachable). See {@link ZeroCopyMessage} for the contract.
 *   <li><i>in place</i>: same buffer conditions but small or without aliasable fields: parsed
 *       directly from the transport buffer without aliasing, nothing held afterwards.
 *   <li><i>copied</i>: anything else (Netty's split buffers, heap buffers, compression): ordinary
 *       parsing, as {@code ProtoUtils} does.
 * </ol>
 * Which path ran is counted in {@link #stats()}.
 */
public final class ZeroCopyMarshaller<T extends MessageLite>
    implements MethodDescriptor.PrototypeMarshaller<T> {
  /**
   * Default minimum message size for aliasing. Below it a copy is cheaper than the lease: each
   * aliased message costs a shared-arena close (a handshake with all threads) on release.
   */
  public static final int DEFAULT_ALIAS_THRESHOLD = 64 * 1024;

  private final T prototype;
  private final Parser<T> parser;
  private final int aliasThreshold;
  private final boolean typeCanAlias;
  private final ZeroCopyStats stats = ZeroCopyStats.newChild();

  private ZeroCopyMarshaller(T prototype, int aliasThreshold) {
    this.prototype = Objects.requireNonNull(prototype, "prototype");
    if (aliasThreshold < 0) {
      throw new IllegalArgumentException("aliasThreshold < 0: " + aliasThreshold);
    }
    @SuppressWarnings("unchecked")
    Parser<T> p = (Parser<T>) prototype.getParserForType();
    this.parser = p;
    this.aliasThreshold = aliasThreshold;
    this.typeCanAlias = Schema.canAlias(prototype);
  }

  /** A marshaller for messages of {@code defaultInstance}'s type, default alias threshold. */
  public static <T extends MessageLite> ZeroCopyMarshaller<T> of(T defaultInstance) {
    return new ZeroCopyMarshaller<>(defaultInstance, DEFAULT_ALIAS_THRESHOLD);
  }

  /**
   * A marshaller that aliases only messages of at least {@code aliasThreshold} bytes
   * ({@code 0}: every message that can; {@link Integer#MAX_VALUE}: never).
   */
  public static <T extends MessageLite> ZeroCopyMarshaller<T> of(
      T defaultInstance, int aliasThreshold) {
    return new ZeroCopyMarshaller<>(defaultInstance, aliasThreshold);
  }

  /** This marshaller's counters (also summed into {@link ZeroCopyStats#global()}). */
  public ZeroCopyStats stats() {
    return stats;
  }

  @Override
  public T getMessagePrototype() {
    return prototype;
  }

  @Override
  @SuppressWarnings("unchecked")
  public Class<T> getMessageClass() {
    return (Class<T>) prototype.getClass();
  }

  @Override
  public InputStream stream(T value) {
    return new MessageStream(value, parser);
  }

  @Override
  public T parse(InputStream stream) {
    try {
      if (stream instanceof MessageStream ms) {
        T same = passThrough(ms);
        if (same != null) {
          return same;
        }
      }
      if (stream instanceof KnownLength && stream instanceof HasByteBuffer hbb
          && hbb.byteBufferSupported() && AliasSupport.DIRECT_DECODER) {
        int size = stream.available();
        ByteBuffer view = hbb.getByteBuffer();
        if (size > 0 && view != null && view.isDirect() && view.remaining() >= size) {
          if (typeCanAlias && size >= aliasThreshold && stream instanceof Detachable d) {
            return parseAliased(d, size);
          }
          return parseInPlace(view, size);
        }
      }
      stats.onCopied();
      return parseCopy(stream);
    } catch (InvalidProtocolBufferException e) {
      throw Status.INTERNAL.withDescription("Invalid protobuf byte sequence").withCause(e)
          .asRuntimeException();
    } catch (IOException e) {
      throw Status.INTERNAL.withDescription("Reading the message failed").withCause(e)
          .asRuntimeException();
    }
  }

  private T passThrough(MessageStream ms) {
    MessageLite unsent = ms.peekMessage();
    // An aliased message must not cross to another call: its sender may release it while the
    // receiver still reads it. Serialise such a message like any other.
    if (unsent == null || LeaseRegistry.find(unsent) != null) {
      return null;
    }
    @SuppressWarnings("unchecked")
    T m = (T) ms.takeMessage(parser);
    if (m != null) {
      stats.onPassedThrough();
    }
    return m;
  }

  private T parseAliased(Detachable source, int size) throws IOException {
    // After detach() grpc's stream is empty and closing it does nothing: the memory is ours
    // until we close the detached stream (exactly once, in Lease.Releaser).
    InputStream owner = source.detach();
    ByteBuffer view = owner instanceof HasByteBuffer h && h.byteBufferSupported()
        ? h.getByteBuffer() : null;
    if (view == null || !view.isDirect() || view.remaining() < size) {
      try (owner) {
        stats.onCopied();
        return parseCopy(owner);
      }
    }
    Lease lease;
    try {
      lease = new Lease(view, size, owner, stats);
    } catch (RuntimeException e) {
      owner.close();
      throw e;
    }
    T message;
    try {
      message = parseFrom(lease.buffer(), true);
    } catch (IOException | RuntimeException e) {
      lease.discard();
      throw e;
    }
    stats.onAliased();
    LeaseRegistry.bind(message, lease);
    return message;
  }

  private T parseInPlace(ByteBuffer view, int size) throws IOException {
    ByteBuffer exact = view.slice(view.position(), size);
    T message = parseFrom(exact, false);
    stats.onInPlace();
    return message;
  }

  private T parseFrom(ByteBuffer buffer, boolean alias) throws IOException {
    // ByteString.newCodedInput() on a wrapped direct buffer is protobuf's only public way to get
    // its in-place decoder (CodedInputStream.newInstance(ByteBuffer) copies direct buffers).
    CodedInputStream in = UnsafeByteOperations.unsafeWrap(buffer).newCodedInput();
    in.enableAliasing(alias);
    in.setSizeLimit(Integer.MAX_VALUE);
    T message = parser.parseFrom(in);
    in.checkLastTagWas(0);
    return message;
  }

  private T parseCopy(InputStream stream) throws IOException {
    CodedInputStream in;
    if (stream instanceof KnownLength) {
      int size = stream.available();
      if (size == 0) {
        return prototype;
      }
      // One copy into a private array; aliasing that array is safe (nobody else has it) and
      // saves a second copy of every bytes field.
      byte[] bytes = stream.readNBytes(size);
      if (bytes.length != size) {
        throw new IOException("stream ended after " + bytes.length + " of " + size + " bytes");
      }
      in = CodedInputStream.newInstance(bytes);
      in.enableAliasing(true);
    } else {
      in = CodedInputStream.newInstance(stream);
    }
    in.setSizeLimit(Integer.MAX_VALUE);
    T message = parser.parseFrom(in);
    in.checkLastTagWas(0);
    return message;
  }

  @Override
  public String toString() {
    return "ZeroCopyMarshaller{" + prototype.getClass().getName() + ", aliasThreshold="
        + aliasThreshold + ", typeCanAlias=" + typeCanAlias + "}";
  }
}
