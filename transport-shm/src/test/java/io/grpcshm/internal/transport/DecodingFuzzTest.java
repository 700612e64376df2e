package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.frame.DecodedStrings;
import io.grpcshm.internal.frame.MetadataArrays;
import io.grpcshm.internal.frame.FrameCodec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.grpcshm.internal.handshake.HandshakeException;
import io.grpcshm.internal.handshake.HandshakeMessage;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingCorruptedException;
import io.grpcshm.internal.ring.RingDescriptor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Fuzz targets for everything that decodes bytes a peer controls. Each run of {@code mvn test}
 * replays the committed corpus (src/test/resources/.../DecodingFuzzTestInputs); with
 * {@code JAZZER_FUZZ=1} Jazzer mutates new inputs. The property under test: a hostile input
 * produces the documented protocol exception and nothing else — no other exception type (a
 * missed bounds check), no hang, no crash.
 */
class DecodingFuzzTest {
  private static final int CAPACITY = 4096;

  /** Arbitrary ring contents and positions: only RingCorruptedException may escape. */
  @FuzzTest(maxDuration = "20s")
  void ringConsumerSurvivesArbitraryMemory(FuzzedDataProvider data) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      long head = data.consumeLong(0, 1L << 40);
      long tail = data.consumeBoolean() ? head + data.consumeInt(0, CAPACITY + 64)
          : data.consumeLong();
      ring.set(ValueLayout.JAVA_LONG, RingDescriptor.HEAD_OFFSET, head);
      ring.set(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET, tail);
      byte[] contents = data.consumeBytes(CAPACITY);
      MemorySegment.copy(contents, 0, ring, ValueLayout.JAVA_BYTE, RingDescriptor.HEADER_LENGTH,
          contents.length);
      RingConsumer consumer = new RingConsumer(ring, CAPACITY);
      long[] seen = new long[1];
      try {
        consumer.poll((d, offset, length) -> {
          assertTrue(length >= FrameLayout.HEADER_LENGTH && offset + length <= CAPACITY,
              "record handed out of bounds: " + offset + "+" + length);
          seen[0] += RingDescriptor.align(length);
        }, Integer.MAX_VALUE);
      } catch (RingCorruptedException expected) {
        // the documented outcome for a lying peer
      }
      assertTrue(seen[0] <= CAPACITY, "consumed more than one ring of records");
    }
  }

  /** Frame bodies: metadata, status, strings. Only ProtocolException / underflow may escape. */
  @FuzzTest(maxDuration = "20s")
  void frameBodiesDecodeOrFailCleanly(byte[] input) {
    for (int what = 0; what < 3; what++) {
      ByteBuffer body = ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN);
      try {
        switch (what) {
          case 0 -> FrameCodec.getResponseMetadata(body);
          case 1 -> FrameCodec.getStatus(body);
          default -> {
            DecodedStrings strings = new DecodedStrings();
            strings.getString16(body, "path");
            strings.getString16(body, "authority");
            FrameCodec.getRequestMetadata(body, new MetadataArrays()); // as the server decodes
          }
        }
      } catch (ProtocolException | BufferUnderflowException expected) {
        // malformed frame: closes that connection only
      }
    }
  }

  /** Handshake and control messages: only HandshakeException may escape. */
  @FuzzTest(maxDuration = "20s")
  void handshakeMessagesDecodeOrFailCleanly(byte[] input) {
    try {
      HandshakeMessage message = HandshakeMessage.decode(input, input.length);
      byte[] again = new byte[8192];
      int length = HandshakeMessage.encode(message, again);
      if (!(message instanceof HandshakeMessage.ServerReject)) {
        // Everything but a reject (whose text may be re-encoded) round-trips byte for byte.
        assertEquals(message, HandshakeMessage.decode(again, length));
      }
    } catch (HandshakeException expected) {
      // refused peer
    }
  }

  /** Releases a peer chooses: the pool never frees what it did not lend, never corrupts. */
  @FuzzTest(maxDuration = "20s")
  void blockReferencesAreValidated(FuzzedDataProvider data) {
    BlockPool pool = new BlockPool(64 * BlockPool.PAGE);
    java.util.Map<Long, Integer> lent = new java.util.HashMap<>();
    int steps = data.consumeInt(0, 200);
    for (int i = 0; i < steps; i++) {
      if (data.consumeBoolean()) {
        int bytes = data.consumeInt(1, 16 * BlockPool.PAGE);
        long offset = pool.allocate(bytes);
        if (offset >= 0) {
          assertTrue(lent.putIfAbsent(offset, bytes) == null, "extent lent twice");
          for (var e : lent.entrySet()) {
            if (e.getKey() != offset) {
              long aEnd = offset + bytes;
              long bEnd = e.getKey() + e.getValue();
              assertTrue(aEnd <= e.getKey() || bEnd <= offset, "overlapping extents");
            }
          }
        }
      } else {
        long offset = data.consumeBoolean() && !lent.isEmpty()
            ? lent.keySet().iterator().next() : data.consumeLong();
        boolean freed = pool.free(offset);
        assertEquals(lent.remove(offset) != null, freed, "free(" + offset + ")");
      }
    }
  }
}
