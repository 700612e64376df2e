package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class HeapWritableBufferTest {
  @Test
  void releasedBufferServesTheThreadsNextSmallMessageEmpty() {
    HeapWritableBuffer a = HeapWritableBuffer.obtain(100);
    a.write(new byte[] {1, 2, 3}, 0, 3);
    a.release();
    HeapWritableBuffer b = HeapWritableBuffer.obtain(50);
    assertSame(a, b, "recycled");
    assertEquals(0, b.readableBytes(), "starts empty");
    assertTrue(b.writableBytes() >= 50);
    // Handed out once only: a second obtain before release gets another buffer.
    assertNotSame(b, HeapWritableBuffer.obtain(50));
    b.release();
  }

  @Test
  void releaseTwiceRecyclesOnce() {
    HeapWritableBuffer a = HeapWritableBuffer.obtain(64);
    a.release();
    a.release();
    HeapWritableBuffer first = HeapWritableBuffer.obtain(64);
    HeapWritableBuffer second = HeapWritableBuffer.obtain(64);
    assertSame(a, first);
    assertNotSame(a, second, "the same buffer must never serve two messages at once");
    first.release();
    second.release();
  }

  @Test
  void bufferTooSmallOrTooLargeIsNotReused() {
    HeapWritableBuffer small = HeapWritableBuffer.obtain(64);
    small.release();
    HeapWritableBuffer bigger = HeapWritableBuffer.obtain(1000);
    assertNotSame(small, bigger);
    assertTrue(bigger.writableBytes() >= 1000);
    bigger.release(); // replaces the smaller cached one
    assertSame(bigger, HeapWritableBuffer.obtain(10));
    HeapWritableBuffer huge = HeapWritableBuffer.obtain(HeapWritableBuffer.MAX_CACHED_CAPACITY + 1);
    huge.release();
    assertNotSame(huge, HeapWritableBuffer.obtain(HeapWritableBuffer.MAX_CACHED_CAPACITY + 1));
  }
}
