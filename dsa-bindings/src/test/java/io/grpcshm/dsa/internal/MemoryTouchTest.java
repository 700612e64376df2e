package io.grpcshm.dsa.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * The page-fault resume touches the faulting page so the device finds it mapped. A touch the JIT
 * compiles away (an unused load, a store of the byte just loaded) leaves the page unmapped and the
 * resubmitted descriptor faults again. mincore(2) on a fresh anonymous mapping says whether the
 * compiled touch really mapped each page.
 */
class MemoryTouchTest {
  /** Enough calls for C2 (tier 4 compiles after some thousands of invocations). */
  private static final int WARM_UP_CALLS = 300_000;

  @Test
  void compiledTouchMapsFreshPagesAndKeepsTheirBytes() throws Exception {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment warm = arena.allocate(4096, 64);
      warm.fill((byte) 0x5a);
      for (int i = 0; i < WARM_UP_CALLS; i++) {
        Memory.touch(warm.address() + (i & 63), (i & 1) == 0);
      }
      Thread.sleep(300); // background compilation finishes
      for (int i = 0; i < WARM_UP_CALLS; i++) {
        Memory.touch(warm.address() + (i & 63), (i & 1) == 0);
      }
      for (long i = 0; i < warm.byteSize(); i++) {
        assertEquals((byte) 0x5a, warm.get(ValueLayout.JAVA_BYTE, i), "touch changed byte " + i);
      }
    }
    long page = TestLibc.pageSize();
    int pages = 64;
    long base = TestLibc.mapAnonymous(pages * page, false);
    try {
      boolean[] before = TestLibc.resident(base, pages * page);
      for (int p = 0; p < pages; p++) {
        assertFalse(before[p], "page " + p + " present before any touch");
      }
      for (int p = 0; p < pages; p++) {
        // Odd pages as the destination of a write fault, even ones as a source.
        Memory.touch(base + p * page + 123, (p & 1) == 1);
      }
      boolean[] after = TestLibc.resident(base, pages * page);
      StringBuilder missing = new StringBuilder();
      for (int p = 0; p < pages; p++) {
        if (!after[p]) {
          missing.append(p).append((p & 1) == 1 ? "(write) " : "(read) ");
        }
      }
      assertEquals("", missing.toString(), "pages the touch left unmapped");
      MemorySegment mapped = MemorySegment.ofAddress(base).reinterpret(pages * page);
      assertEquals(-1, mapped.mismatch(MemorySegment.ofArray(new byte[(int) (pages * page)])),
          "the write touch changed data");
    } finally {
      TestLibc.unmap(base, pages * page);
    }
  }
}
