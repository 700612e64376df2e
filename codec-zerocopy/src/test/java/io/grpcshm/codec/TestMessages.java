package io.grpcshm.codec;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Detachable;
import io.grpc.HasByteBuffer;
import io.grpc.KnownLength;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.Digest;
import io.grpcshm.codec.testing.Item;
import io.grpcshm.internal.nativeio.SharedMapping;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.CRC32;

/** Test data and a stand-in for grpc's deframer stream over transport memory. */
final class TestMessages {
  private TestMessages() {}

  static byte[] pattern(int size, long seed) {
    byte[] b = new byte[size];
    new SplittableRandom(seed).nextBytes(b);
    return b;
  }

  /** A blob with a payload of {@code payloadSize} bytes and {@code items} small items. */
  static Blob blob(int payloadSize, int items, long seed) {
    Blob.Builder b = Blob.newBuilder()
        .setPayload(UnsafeByteOperations.unsafeWrap(pattern(payloadSize, seed)))
        .setName("blob-" + seed + "-\u00e9\u6f22")
        .setSeq(seed * 1_000_003L);
    for (int i = 0; i < items; i++) {
      b.addItems(Item.newBuilder().setId(i).setLabel("item " + i).setWeight(i / 3.0)
          .setTag(ByteString.copyFromUtf8("t" + i)).setFlag(i % 2 == 0));
      b.putAttrs("k" + i, "v" + (i * 7));
      b.addDeltas(i % 2 == 0 ? -i : i);
    }
    return b.build();
  }

  static long crc(ByteString bytes) {
    CRC32 crc = new CRC32();
    // Through the ByteBuffer API: works for heap and aliased direct payloads, no copy.
    crc.update(bytes.asReadOnlyByteBuffer());
    return crc.getValue();
  }

  static Digest digest(Blob blob) {
    return Digest.newBuilder().setPayloadSize(blob.getPayload().size())
        .setPayloadCrc(crc(blob.getPayload())).setItemCount(blob.getItemsCount())
        .setName(blob.getName()).build();
  }

  static boolean isDirect(ByteString bytes) {
    return bytes.asReadOnlyByteBuffer().isDirect();
  }

  /** Whether {@code bytes} is a view of an open shared-memory mapping (transport memory). */
  static boolean inSharedMemory(ByteString bytes) {
    ByteBuffer buffer = bytes.asReadOnlyByteBuffer();
    return buffer.isDirect() && SharedMapping.isOpenMapping(MemorySegment.ofBuffer(buffer));
  }

  static long allocatedBytes() {
    return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean())
        .getCurrentThreadAllocatedBytes();
  }

  /**
   * Behaves like grpc's {@code ReadableBuffers.BufferInputStream} over one transport buffer:
   * known length, byte buffer access, detachable. Counts closes of the stream that owns the
   * memory, and "reuses" the memory (overwrites it) when the owner is closed, as a transport
   * would.
   */
  static final class TransportStream extends InputStream
      implements KnownLength, HasByteBuffer, Detachable {
    final AtomicInteger ownerCloses;
    private ByteBuffer buffer;
    private final ByteBuffer memory;
    private boolean closed;

    TransportStream(ByteBuffer memory) {
      this(memory, memory.duplicate(), new AtomicInteger());
    }

    private TransportStream(ByteBuffer memory, ByteBuffer buffer, AtomicInteger ownerCloses) {
      this.memory = memory;
      this.buffer = buffer;
      this.ownerCloses = ownerCloses;
    }

    static TransportStream of(byte[] message) {
      ByteBuffer direct = ByteBuffer.allocateDirect(message.length).put(message).flip();
      return new TransportStream(direct);
    }

    @Override
    public int available() {
      return buffer.remaining();
    }

    @Override
    public int read() {
      return buffer.hasRemaining() ? buffer.get() & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (!buffer.hasRemaining()) {
        return -1;
      }
      int n = Math.min(len, buffer.remaining());
      buffer.get(b, off, n);
      return n;
    }

    @Override
    public boolean byteBufferSupported() {
      return true;
    }

    @Override
    public ByteBuffer getByteBuffer() {
      return buffer.slice().asReadOnlyBuffer();
    }

    @Override
    public InputStream detach() {
      TransportStream owner = new TransportStream(memory, buffer, ownerCloses);
      buffer = ByteBuffer.allocate(0);
      return owner;
    }

    @Override
    public void close() {
      if (!closed && buffer.capacity() > 0) {
        closed = true;
        ownerCloses.incrementAndGet();
        // The transport may now reuse the memory: scribble over it.
        for (int i = 0; i < memory.capacity(); i++) {
          memory.put(i, (byte) 0x5A);
        }
      }
    }
  }
}
