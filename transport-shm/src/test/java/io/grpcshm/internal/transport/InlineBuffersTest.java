package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.internal.ReadableBuffer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * Received inline payloads live in reused arrays: what grpc reads is what the ring carried, and an
 * array is reused only once every buffer reading it is closed. The pool is process-wide and its
 * free lists are stacks, so a test sees the array it freed last come back first.
 */
class InlineBuffersTest {
  private static final int SIZE = 5_000;

  private static InlineBuffers.Payload filled(int length, int seed) {
    InlineBuffers.Payload p = InlineBuffers.obtain(length);
    byte[] a = p.array();
    for (int i = 0; i < length; i++) {
      a[i] = (byte) (seed + i);
    }
    return p;
  }

  @Test
  void grpcReadsTheBytesThatWereCopiedIn() throws Exception {
    InlineBuffers.Payload p = filled(SIZE, 7);
    assertEquals(SIZE, p.readableBytes());
    assertEquals(7, p.readUnsignedByte());
    byte[] four = new byte[4];
    p.readBytes(four, 0, 4);
    assertArrayEquals(new byte[] {8, 9, 10, 11}, four);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    p.readBytes(out, 3);
    assertArrayEquals(new byte[] {12, 13, 14}, out.toByteArray());
    ByteBuffer rest = p.getByteBuffer();
    assertEquals(SIZE - 8, rest.remaining());
    assertEquals((byte) 15, rest.get(0));
    assertEquals(8, p.arrayOffset());
    p.close();
  }

  @Test
  void aClosedPayloadsArrayIsReusedByTheNextOfItsClass() {
    InlineBuffers.Payload first = filled(SIZE, 1);
    byte[] array = first.array();
    int free = InlineBuffers.freeCount(SIZE);
    first.close();
    assertEquals(free + 1, InlineBuffers.freeCount(SIZE));
    first.close(); // idempotent: the array is not offered twice
    assertEquals(free + 1, InlineBuffers.freeCount(SIZE));
    InlineBuffers.Payload next = InlineBuffers.obtain(SIZE + 1_000); // same 8 KiB class
    assertSame(array, next.array());
    next.close();
  }

  @Test
  void aSliceKeepsTheArrayUntilItIsClosedToo() {
    InlineBuffers.Payload whole = filled(SIZE, 3);
    whole.skipBytes(5); // grpc's message prefix
    ReadableBuffer message = whole.readBytes(SIZE - 5);
    whole.close();
    InlineBuffers.Payload other = InlineBuffers.obtain(SIZE);
    assertNotSame(whole.array(), other.array(), "reused while a slice still reads it");
    byte[] got = new byte[SIZE - 5];
    message.readBytes(got, 0, got.length);
    for (int i = 0; i < got.length; i++) {
      assertEquals((byte) (3 + 5 + i), got[i]);
    }
    byte[] array = whole.array();
    message.close();
    other.close();
    // Both arrays are free now; the most recently freed one comes back first.
    assertSame(other.array(), InlineBuffers.obtain(SIZE).array());
    InlineBuffers.Payload again = InlineBuffers.obtain(SIZE);
    assertSame(array, again.array());
  }

  @Test
  void aClosedPayloadCannotBeRead() {
    InlineBuffers.Payload p = filled(SIZE, 0);
    p.close();
    assertThrows(IllegalStateException.class, p::readUnsignedByte);
    assertThrows(IllegalStateException.class, () -> p.readBytes(1));
  }

  @Test
  void readsBeyondThePayloadFailWithoutMovingIt() {
    InlineBuffers.Payload p = filled(10, 0);
    assertThrows(IndexOutOfBoundsException.class, () -> p.readBytes(new byte[11], 0, 11));
    assertEquals(10, p.readableBytes());
    p.close();
  }

  @Test
  void sizeClassesArePowersOfTwoUpTo32KiBAndLargerPayloadsAreNotPooled() {
    assertEquals(0, InlineBuffers.classOf(1));
    assertEquals(0, InlineBuffers.classOf(64));
    assertEquals(1, InlineBuffers.classOf(65));
    assertEquals(InlineBuffers.classOf(InlineBuffers.MAX_CLASS_BYTES),
        InlineBuffers.classOf(InlineBuffers.MAX_CLASS_BYTES / 2 + 1));
    InlineBuffers.Payload big = InlineBuffers.obtain(InlineBuffers.MAX_CLASS_BYTES + 1);
    assertEquals(InlineBuffers.MAX_CLASS_BYTES + 1, big.array().length);
    big.close();
    assertNotSame(big.array(), InlineBuffers.obtain(InlineBuffers.MAX_CLASS_BYTES + 1).array());
  }

  @Test
  void aClassMakesAtMostItsCapacityAndThenLendsExactArrays() {
    int bytes = 20_000; // 32 KiB class: 8 MiB / 32 KiB = 256 arrays at most
    int capacity = InlineBuffers.MAX_BYTES_PER_CLASS / (32 * 1024);
    InlineBuffers.Payload[] many = new InlineBuffers.Payload[capacity + 50];
    int pooled = 0;
    for (int i = 0; i < many.length; i++) {
      many[i] = InlineBuffers.obtain(bytes);
      int length = many[i].array().length;
      if (length == 32 * 1024) {
        pooled++;
      } else {
        assertEquals(bytes, length, "a payload beyond the class's arrays gets its exact size");
      }
    }
    assertTrue(pooled <= capacity, pooled + " arrays of a class of " + capacity);
    assertTrue(pooled < many.length, "the class stopped making arrays at its capacity");
    for (InlineBuffers.Payload p : many) {
      p.close();
    }
    int free = InlineBuffers.freeCount(bytes);
    assertTrue(free >= pooled && free <= capacity, free + " free after closing " + pooled);
  }

  @Test
  void aBurstBeyondTheKeptArraysIsPooledThenGivenBackOnceUnused() {
    int bytes = 1_029; // a 1 KiB message and grpc's prefix: 2 KiB class
    int kept = InlineBuffers.KEPT_BYTES_PER_CLASS / 2048;
    int burst = kept * 4; // a slow reader's window: more than the kept arrays
    // Other tests' connections may still tick: no periodic trim during this test.
    InlineBuffers.holdPeriodicTrims(java.util.concurrent.TimeUnit.MINUTES.toNanos(10));
    try {
      InlineBuffers.trimAll(); // whatever earlier tests left free beyond the kept ones goes
      // Arrays earlier tests still hold (a payload never closed is allowed): they count as made.
      int lentElsewhere = InlineBuffers.madeCount(bytes) - InlineBuffers.freeCount(bytes);
      InlineBuffers.Payload[] held = new InlineBuffers.Payload[burst];
      for (int round = 0; round < 2; round++) {
        for (int i = 0; i < burst; i++) {
          held[i] = InlineBuffers.obtain(bytes);
          assertEquals(2048, held[i].array().length, "message " + i + " of the burst is pooled");
        }
        for (InlineBuffers.Payload p : held) {
          p.close();
        }
      }
      int made = InlineBuffers.madeCount(bytes);
      assertEquals(lentElsewhere + burst, made, "the second burst reused the first's arrays");
      InlineBuffers.trimNow(); // the arrays were needed during this period: kept
      assertTrue(InlineBuffers.madeCount(bytes) >= burst, "arrays in use this period kept");
      InlineBuffers.trimNow(); // a whole period free: all beyond the kept ones go
      assertEquals(Math.max(kept, lentElsewhere), InlineBuffers.madeCount(bytes),
          "unused arrays beyond the kept ones dropped");
      assertEquals(Math.max(kept, lentElsewhere) - lentElsewhere, InlineBuffers.freeCount(bytes),
          "the kept arrays stay");
    } finally {
      InlineBuffers.holdPeriodicTrims(0);
    }
  }
}
