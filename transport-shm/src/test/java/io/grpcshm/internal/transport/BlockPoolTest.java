package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BlockPoolTest {
  @Test
  void allocatesLowestFirstAndReusesFreedExtents() {
    BlockPool pool = new BlockPool(16 * BlockPool.PAGE);
    long a = pool.allocate(100);
    long b = pool.allocate(BlockPool.PAGE + 1); // two pages
    long c = pool.allocate(1);
    assertEquals(0, a);
    assertEquals(BlockPool.PAGE, b);
    assertEquals(3 * BlockPool.PAGE, c);
    assertTrue(pool.free(b));
    assertEquals(BlockPool.PAGE, pool.allocate(2 * BlockPool.PAGE), "hot pages reused first");
  }

  @Test
  void refusesWhatDoesNotFitContiguously() {
    BlockPool pool = new BlockPool(4 * BlockPool.PAGE);
    long a = pool.allocate(BlockPool.PAGE);
    long b = pool.allocate(BlockPool.PAGE);
    long c = pool.allocate(BlockPool.PAGE);
    assertTrue(pool.free(b));
    assertEquals(-1, pool.allocate(2 * BlockPool.PAGE), "two free pages, not adjacent");
    assertEquals(BlockPool.PAGE, pool.allocate(BlockPool.PAGE), "lowest free page first");
    assertEquals(3 * BlockPool.PAGE, pool.allocate(BlockPool.PAGE));
    assertEquals(-1, pool.allocate(1));
    assertTrue(pool.free(a));
    assertTrue(pool.free(c));
  }

  @Test
  void peerCannotFreeWhatItWasNotLent() {
    BlockPool pool = new BlockPool(8 * BlockPool.PAGE);
    long a = pool.allocate(3 * BlockPool.PAGE);
    assertFalse(pool.free(a + BlockPool.PAGE), "middle of an extent");
    assertFalse(pool.free(5 * BlockPool.PAGE), "never allocated");
    assertFalse(pool.free(-BlockPool.PAGE), "negative");
    assertFalse(pool.free(1L << 40), "beyond the pool");
    assertFalse(pool.free(7), "unaligned");
    assertTrue(pool.free(a));
    assertFalse(pool.free(a), "double free");
    assertEquals(0, pool.usedPages());
  }
}
