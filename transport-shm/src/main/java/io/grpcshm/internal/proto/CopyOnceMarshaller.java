package io.grpcshm.internal.proto;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpcshm.internal.nativeio.SharedMapping;
import java.io.IOException;
import java.io.InputStream;
import java.lang.ref.Reference;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.LongAdder;

/**
 * grpc's protobuf marshaller, except that a large message lying in one piece in shared memory
 * is copied once into memory of its own and parsed from there with aliasing: its {@code bytes}
 * fields are views of that private copy. The copy goes into a reused off-heap block of {@link
 * ReceiveBlockPool} (the message owns it until no view of it is reachable) or, when the pool has
 * no room, a heap array of the message's size. grpc's own marshaller reads a message
 * over 4 MiB through a stream decoder, which allocates and copies each large {@code bytes} field
 * twice (the decoder copies what it read, as the array was exposed to the stream).
 *
 * <p>The copy goes through the mapping's checked segment: if the connection closes meanwhile,
 * the copy throws instead of reading the zero pages that replace a closed mapping, so a message
 * is either complete or not delivered (as with grpc's own read of the stream). Everything that
 * is not a large message in shared memory (TCP, inline frames, a message split over buffers)
 * goes to grpc's marshaller untouched.
 */
final class CopyOnceMarshaller<T> implements MethodDescriptor.PrototypeMarshaller<T> {
  /**
   * Up to this size grpc's marshaller reads the message into a reused thread-local array and
   * parses that: one allocation (each {@code bytes} field), and the array decoder it uses is
   * faster than a direct-buffer decoder for many small fields. Same limit as grpc's.
   */
  static final int GRPC_BUFFERED_LIMIT = 4 << 20;
  /** Messages parsed from our own copy (for tests and diagnostics). */
  static final LongAdder COPIED_ONCE = new LongAdder();

  private final MethodDescriptor.PrototypeMarshaller<T> grpc;
  private final GrpcProtoMarshaller settings;
  private final Parser<? extends MessageLite> parser;
  private final ReceiveBlockPool pool;

  CopyOnceMarshaller(MethodDescriptor.PrototypeMarshaller<T> grpc, GrpcProtoMarshaller settings) {
    this(grpc, settings, null);
  }

  /** With {@code pool}, or the process's pool if null. */
  CopyOnceMarshaller(MethodDescriptor.PrototypeMarshaller<T> grpc, GrpcProtoMarshaller settings,
      ReceiveBlockPool pool) {
    this.grpc = grpc;
    this.pool = pool;
    this.settings = settings;
    this.parser = ((MessageLite) grpc.getMessagePrototype()).getParserForType();
  }

  @Override
  public Class<T> getMessageClass() {
    return grpc.getMessageClass();
  }

  @Override
  public T getMessagePrototype() {
    return grpc.getMessagePrototype();
  }

  @Override
  public InputStream stream(T value) {
    return grpc.stream(value);
  }

  @Override
  public T parse(InputStream stream) {
    MemorySegment shared;
    try {
      shared = wholeMessageInSharedMemory(stream);
    } catch (IOException e) {
      throw new RuntimeException(e);
    }
    if (shared == null) {
      return grpc.parse(stream);
    }
    ByteString copy = copyOf(shared);
    try {
      // Consumed, as grpc's marshaller leaves it; closing the stream then releases the extent.
      stream.skip(copy.size());
    } catch (IOException e) {
      throw new RuntimeException(e);
    }
    COPIED_ONCE.increment();
    try {
      return parseCopy(copy);
    } finally {
      // The decoder reads an off-heap block by address: keep its scope until parsing ends.
      Reference.reachabilityFence(copy);
    }
  }

  /**
   * A private copy of {@code source}: in a pooled off-heap block when the pool has room (reused,
   * so not zeroed again), else in a new heap array. Either never changes again, so protobuf may
   * alias it: a direct buffer's decoder makes {@code bytes} fields slices of the buffer, which
   * keep the block's scope reachable; an array's, views of the array.
   */
  ByteString copyOf(MemorySegment source) {
    int size = Math.toIntExact(source.byteSize());
    MemorySegment pooled = (pool != null ? pool : ReceiveBlockPool.shared()).lend(size);
    byte[] array = pooled == null ? new byte[size] : null;
    // One thread: a second one (ParallelCopy) measured slower here, on a busy 2-vCPU machine
    // where the other core is not free.
    MemorySegment target = pooled != null ? pooled : MemorySegment.ofArray(array);
    MemorySegment.copy(source, 0, target, 0, size);
    return pooled != null ? UnsafeByteOperations.unsafeWrap(pooled.asByteBuffer())
        : UnsafeByteOperations.unsafeWrap(array);
  }

  /** Parses a private copy of a whole message as grpc's marshaller would, aliasing it. */
  T parseCopy(ByteString copy) {
    CodedInputStream in = copy.newCodedInput();
    in.enableAliasing(true);
    in.setSizeLimit(Integer.MAX_VALUE);
    int recursionLimit = settings.recursionLimit();
    if (recursionLimit >= 0) {
      in.setRecursionLimit(recursionLimit);
    }
    try {
      MessageLite message = parser.parseFrom(in, settings.extensionRegistry());
      try {
        in.checkLastTagWas(0);
      } catch (InvalidProtocolBufferException e) {
        e.setUnfinishedMessage(message);
        throw e;
      }
      @SuppressWarnings("unchecked")
      T parsed = (T) message;
      return parsed;
    } catch (InvalidProtocolBufferException e) {
      // grpc's marshaller reports exactly this.
      throw Status.INTERNAL.withDescription("Invalid protobuf byte sequence").withCause(e)
          .asRuntimeException();
    }
  }

  /**
   * The message's bytes if {@code stream} is grpc's stream over one received shared-memory
   * extent holding the whole message, larger than {@link #GRPC_BUFFERED_LIMIT}; else null.
   */
  private static MemorySegment wholeMessageInSharedMemory(InputStream stream) throws IOException {
    if (!(stream instanceof KnownLength) || !(stream instanceof HasByteBuffer buffers)) {
      return null;
    }
    int size = stream.available();
    if (size <= GRPC_BUFFERED_LIMIT || !buffers.byteBufferSupported()) {
      return null;
    }
    ByteBuffer first = buffers.getByteBuffer();
    if (first == null || !first.isDirect() || first.remaining() < size) {
      return null;
    }
    MemorySegment segment = MemorySegment.ofBuffer(first);
    return SharedMapping.isOpenMapping(segment) ? segment.asSlice(0, size) : null;
  }
}
