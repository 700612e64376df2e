package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.internal.frame.FrameLayout;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PendingRecordsTest {
  /** A record of {@code length} bytes: header (length, type) and a body of {@code fill}. */
  private static int queue(PendingRecords q, int length, int type, byte fill) {
    int at = q.reserve(length);
    MemorySegment s = q.segment();
    s.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.LENGTH_OFFSET, length);
    s.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    s.asSlice(at + FrameLayout.HEADER_LENGTH, length - FrameLayout.HEADER_LENGTH).fill(fill);
    q.append(length);
    return at;
  }

  @Test
  void recordsComeOutWholeAndInOrderWhateverTheQueueDidToMakeRoom() {
    PendingRecords q = new PendingRecords();
    ArrayDeque<int[]> expected = new ArrayDeque<>(); // length, type, fill
    Random random = new Random(7);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(128 * 1024);
      for (int step = 0; step < 20_000; step++) {
        if (random.nextInt(3) > 0 || q.isEmpty()) {
          int length = FrameLayout.HEADER_LENGTH + random.nextInt(random.nextInt(10) == 0
              ? 40_000 : 1_100);
          int type = 1 + random.nextInt(9);
          byte fill = (byte) step;
          queue(q, length, type, fill);
          expected.add(new int[] {length, type, fill});
        } else {
          int[] e = expected.poll();
          assertEquals(e[0], q.headLength(), "length of the oldest record");
          assertEquals(e[1], q.headType(), "type of the oldest record");
          q.moveHeadTo(ring, 0, e[0]);
          assertEquals(e[0], ring.get(ValueLayout.JAVA_INT_UNALIGNED, FrameLayout.LENGTH_OFFSET));
          for (int i = FrameLayout.HEADER_LENGTH; i < e[0]; i += 97) {
            assertEquals((byte) e[2], ring.get(ValueLayout.JAVA_BYTE, i), "body byte " + i);
          }
        }
      }
    }
    int left = expected.stream().mapToInt(e -> e[0]).sum();
    assertEquals(left, q.queuedBytes());
  }

  @Test
  void aSteadyQueueReusesItsArrayAndAnIdleOneGivesAGrownArrayBack() {
    PendingRecords q = new PendingRecords();
    queue(q, 1_040, 2, (byte) 1);
    MemorySegment first = q.segment();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ring = arena.allocate(2048);
      for (int i = 0; i < 10_000; i++) {
        queue(q, 1_040, 2, (byte) i);
        q.moveHeadTo(ring, 0, 1_040);
      }
    }
    assertTrue(q.segment() == first, "ten thousand frames through one array");
    for (int i = 0; i < 200; i++) {
      queue(q, 1_040, 2, (byte) i); // a backlog: the array grows
    }
    assertTrue(q.segment().byteSize() >= 200 * 1_040);
    q.trim();
    assertTrue(q.segment() != null, "a queue with records keeps its array");
    q.clear();
    q.trim();
    assertTrue(q.isEmpty() && q.segment() == null, "an empty grown queue gives its array back");
    queue(q, 100, 2, (byte) 3);
    assertEquals(100, q.headLength(), "and makes a new one when needed");
  }
}
