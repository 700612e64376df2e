package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Each test runs on a fresh thread: the recycling cache is per thread. */
class HeapWritableBufferTest {
  private static void onFreshThread(Runnable test) throws Throwable {
    Throwable[] failure = new Throwable[1];
    Thread t = Thread.ofPlatform().start(() -> {
      try {
        test.run();
      } catch (Throwable e) {
        failure[0] = e;
      }
    });
    t.join();
    if (failure[0] != null) {
      throw failure[0];
    }
  }

  @Test
  void releasedBufferServesTheThreadsNextSmallMessageEmpty() throws Throwable {
    onFreshThread(HeapWritableBufferTest::releasedBufferServesTheThreadsNextSmallMessageEmptyBody);
  }

  private static void releasedBufferServesTheThreadsNextSmallMessageEmptyBody() {
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
  void releaseTwiceRecyclesOnce() throws Throwable {
    onFreshThread(HeapWritableBufferTest::releaseTwiceRecyclesOnceBody);
  }

  private static void releaseTwiceRecyclesOnceBody() {
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
  void bufferTooSmallOrTooLargeIsNotReused() throws Throwable {
    onFreshThread(HeapWritableBufferTest::bufferTooSmallOrTooLargeIsNotReusedBody);
  }

  private static void bufferTooSmallOrTooLargeIsNotReusedBody() {
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

  @Test
  void buffersReleasedByAnotherThreadServeTheSendingThreadAgain() throws Throwable {
    // A stream held back by flow control: its frames are sent, and released, by the event loop.
    int size = 1_029;
    HeapWritableBuffer[] sent = new HeapWritableBuffer[40];
    onFreshThread(() -> {
      for (int i = 0; i < sent.length; i++) {
        sent[i] = HeapWritableBuffer.obtain(size);
      }
    });
    HeapWritableBuffer.emptyShelf(size); // earlier tests' streams may have left buffers there
    onFreshThread(() -> {
      for (HeapWritableBuffer b : sent) {
        b.release(); // one stays in this thread's cache, the rest go on the shelf
      }
    });
    assertEquals(sent.length - 1, HeapWritableBuffer.shelved(size),
        "released buffers shelved, but the one the releasing thread keeps");
    java.util.Set<HeapWritableBuffer> ours = java.util.Collections.newSetFromMap(
        new java.util.IdentityHashMap<>());
    ours.addAll(java.util.List.of(sent));
    onFreshThread(() -> {
      java.util.Set<HeapWritableBuffer> seen = java.util.Collections.newSetFromMap(
          new java.util.IdentityHashMap<>());
      for (int i = 0; i < sent.length - 1; i++) {
        HeapWritableBuffer b = HeapWritableBuffer.obtain(size);
        assertEquals(0, b.readableBytes(), "a shelved buffer starts empty");
        assertTrue(b.writableBytes() >= size);
        assertTrue(seen.add(b), "never handed out twice");
      }
      seen.retainAll(ours);
      assertEquals(sent.length - 1, seen.size(), "the sending thread got the released buffers");
    });
  }
}
