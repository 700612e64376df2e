package io.grpcshm.internal.ring;

import io.grpcshm.internal.frame.FrameLayout;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class RingTest {
  private static final int CAPACITY = 4096;

  private static long write(RingProducer p, byte[] body, int type) {
    int len = FrameLayout.HEADER_LENGTH + body.length;
    long at = p.claim(len);
    if (at < 0) {
      return at;
    }
    MemorySegment d = p.data();
    d.set(ValueLayout.JAVA_INT, at, len);
    d.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    d.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET, 7);
    MemorySegment.copy(body, 0, d, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH,
        body.length);
    p.commit();
    return at;
  }

  /** Consumes every record waiting, adding each one's body (after the frame header). */
  private static void drainBodies(RingConsumer consumer, List<byte[]> bodies) {
    consumer.poll((data, off, len) -> {
      byte[] copy = new byte[len - FrameLayout.HEADER_LENGTH];
      MemorySegment.copy(data, ValueLayout.JAVA_BYTE, off + FrameLayout.HEADER_LENGTH, copy, 0,
          copy.length);
      bodies.add(copy);
    }, Integer.MAX_VALUE);
  }

  @Test
  void recordsSurviveManyWrapArounds() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      RingProducer producer = new RingProducer(ring, CAPACITY);
      RingConsumer consumer = new RingConsumer(ring, CAPACITY);
      Random random = new Random(42);
      List<byte[]> sent = new ArrayList<>();
      List<byte[]> received = new ArrayList<>();
      boolean wrappedAtLeastOnce = false;
      long lastOffset = -1;
      for (int i = 0; i < 5000; i++) {
        byte[] body = new byte[random.nextInt(producer.maxRecordLength() - 12)];
        random.nextBytes(body);
        long at = write(producer, body, FrameLayout.TYPE_DATA_INLINE);
        if (at < 0) {
          drainBodies(consumer, received);
          at = write(producer, body, FrameLayout.TYPE_DATA_INLINE);
          assertTrue(at >= 0, "space after draining");
        }
        wrappedAtLeastOnce |= at < lastOffset;
        lastOffset = at;
        sent.add(body);
      }
      drainBodies(consumer, received);
      assertTrue(wrappedAtLeastOnce);
      assertEquals(sent.size(), received.size());
      for (int i = 0; i < sent.size(); i++) {
        assertArrayEquals(sent.get(i), received.get(i), "record " + i);
      }
    }
  }

  @Test
  void fullRingRefusesClaimUntilConsumed() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      RingProducer producer = new RingProducer(ring, CAPACITY);
      RingConsumer consumer = new RingConsumer(ring, CAPACITY);
      byte[] body = new byte[500];
      int written = 0;
      while (write(producer, body, FrameLayout.TYPE_DATA_INLINE) >= 0) {
        written++;
      }
      assertEquals(CAPACITY / RingDescriptor.align(512), written);
      assertEquals(1, consumer.poll((d, o, l) -> { }, 1));
      assertTrue(write(producer, body, FrameLayout.TYPE_DATA_INLINE) >= 0);
    }
  }

  @Test
  void lyingProducerPositionsAreDetected() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      RingConsumer consumer = new RingConsumer(ring, CAPACITY);
      // Tail claims more than a ring's worth of unread bytes.
      ring.set(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET, CAPACITY + 8L);
      assertThrows(RingCorruptedException.class, () -> consumer.poll((d, o, l) -> { }, 10));
    }
  }

  @Test
  void lyingRecordLengthIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      RingProducer producer = new RingProducer(ring, CAPACITY);
      RingConsumer consumer = new RingConsumer(ring, CAPACITY);
      write(producer, new byte[20], FrameLayout.TYPE_DATA_INLINE);
      MemorySegment data = ring.asSlice(RingDescriptor.HEADER_LENGTH);
      data.set(ValueLayout.JAVA_INT, 0, 1 << 20); // length far beyond what was published
      assertThrows(RingCorruptedException.class, () -> consumer.poll((d, o, l) -> { }, 10));
      data.set(ValueLayout.JAVA_INT, 0, 3); // shorter than a header
      assertThrows(RingCorruptedException.class, () -> consumer.poll((d, o, l) -> { }, 10));
    }
  }

  @Test
  void lyingConsumerPositionIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      RingProducer producer = new RingProducer(ring, CAPACITY);
      byte[] body = new byte[500];
      while (write(producer, body, FrameLayout.TYPE_DATA_INLINE) >= 0) {
        // fill the ring so the producer must read the consumer's head
      }
      ring.set(ValueLayout.JAVA_LONG, RingDescriptor.HEAD_OFFSET, 1L << 40); // beyond our tail
      assertThrows(RingCorruptedException.class,
          () -> write(producer, body, FrameLayout.TYPE_DATA_INLINE));
    }
  }

  @Test
  void oversizeRecordsAreRefusedLocally() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(RingDescriptor.totalLength(CAPACITY), 64);
      RingProducer producer = new RingProducer(ring, CAPACITY);
      assertThrows(IllegalArgumentException.class, () -> producer.claim(CAPACITY));
      assertThrows(IllegalArgumentException.class, () -> producer.claim(4));
      assertThrows(IllegalArgumentException.class, () -> new RingProducer(ring, 3000));
    }
  }

  /** A connection's rings keep their headers apart from their data (PROTOCOL.md §4). */
  @Test
  void headerApartFromDataCarriesRecordsAndIsChecked() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment header = arena.allocate(RingDescriptor.HEADER_LENGTH, 64);
      MemorySegment data = arena.allocate(CAPACITY, 4096);
      RingProducer producer = new RingProducer(header, data, CAPACITY);
      RingConsumer consumer = new RingConsumer(header, data, CAPACITY);
      byte[] body = {1, 2, 3, 4, 5};
      long at = write(producer, body, FrameLayout.TYPE_DATA_INLINE);
      assertEquals(0, at, "the first record starts the data area");
      assertEquals(FrameLayout.TYPE_DATA_INLINE,
          data.get(ValueLayout.JAVA_BYTE, FrameLayout.TYPE_OFFSET));
      assertTrue(header.get(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET) > 0,
          "the tail is published in the header");
      List<byte[]> received = new ArrayList<>();
      drainBodies(consumer, received);
      assertEquals(1, received.size());
      assertArrayEquals(body, received.get(0));
      assertThrows(IllegalArgumentException.class,
          () -> new RingProducer(header.asSlice(0, 128), data, CAPACITY));
      assertThrows(IllegalArgumentException.class,
          () -> new RingConsumer(header, data.asSlice(0, CAPACITY / 2), CAPACITY));
    }
  }
}
