package io.grpcshm.internal.proto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.MethodDescriptor;
import io.grpc.protobuf.ProtoUtils;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.SharedMapping;
import io.grpcshm.internal.proto.testing.Everything;
import io.grpcshm.internal.proto.testing.Part;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The off-heap receive pool: size classes, reuse, the cap and its heap fallback, blocks given
 * back only once no view of them is reachable, and a parsed message owning its block.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES)
class ReceiveBlockPoolTest {
  private static final long MIB = 1 << 20;

  /** Collects garbage until {@code condition} holds (false after 20 s). */
  private static boolean gcUntil(BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      System.gc();
      Thread.sleep(20);
    }
    return true;
  }

  /** Lends {@code size} bytes, fills them and drops every reference; returns the address. */
  private static long lendAndDrop(ReceiveBlockPool pool, long size) {
    MemorySegment lent = pool.lend(size);
    assertNotNull(lent);
    lent.fill((byte) 7);
    return lent.address();
  }

  @Test
  void sizeClassesAreEightStepsPerPowerOfTwoFromFourMib() {
    assertEquals(4 * MIB, ReceiveBlockPool.classSize(1));
    assertEquals(4 * MIB, ReceiveBlockPool.classSize(4 * MIB));
    assertEquals(4 * MIB + MIB / 2, ReceiveBlockPool.classSize(4 * MIB + 1));
    assertEquals(8 * MIB, ReceiveBlockPool.classSize(8 * MIB));
    assertEquals(18 * MIB, ReceiveBlockPool.classSize(16 * MIB + 5));
    assertEquals(64 * MIB, ReceiveBlockPool.classSize(64 * MIB));
    assertEquals(72 * MIB, ReceiveBlockPool.classSize(64 * MIB + 5));
    for (long size = 4 * MIB + 1; size < 300 * MIB; size += 3 * MIB + 12345) {
      long cls = ReceiveBlockPool.classSize(size);
      assertTrue(cls >= size && cls <= size + size / 8, size + " -> " + cls);
      assertEquals(0, cls % 4096, "page multiple");
    }
  }

  @Test
  void blocksArePageAlignedAndReusedOnceUnreachable() throws Exception {
    ReceiveBlockPool pool = new ReceiveBlockPool(64 * MIB);
    MemorySegment first = pool.lend(5 * MIB);
    assertNotNull(first);
    assertEquals(5 * MIB, first.byteSize());
    assertEquals(0, first.address() % 4096);
    assertEquals(5 * MIB, pool.residentBytes());
    assertEquals(5 * MIB, pool.lentBytes());
    long address = first.address();
    first = null;
    assertTrue(gcUntil(() -> pool.lentBytes() == 0), "block given back once unreachable");
    MemorySegment again = pool.lend(5 * MIB - 100);
    assertEquals(address, again.address(), "same class, same block");
    assertEquals(5 * MIB - 100, again.byteSize());
    ReceiveBlockPool.Stats stats = pool.stats();
    assertEquals(2, stats.lent());
    assertEquals(1, stats.reused());
    assertEquals(1, stats.returned());
    assertEquals(5 * MIB, stats.residentBytes());
  }

  @Test
  void atTheCapLendingRefusesWithoutWaiting() throws Exception {
    ReceiveBlockPool pool = new ReceiveBlockPool(12 * MIB);
    MemorySegment a = pool.lend(5 * MIB);
    MemorySegment b = pool.lend(5 * MIB);
    assertNotNull(a);
    assertNotNull(b);
    long t0 = System.nanoTime();
    assertNull(pool.lend(5 * MIB), "a third 5 MiB block exceeds 12 MiB");
    assertNull(pool.lend(100 * MIB), "larger than the cap");
    assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(1));
    assertEquals(2, pool.stats().refused());
    assertEquals(10 * MIB, pool.residentBytes());
    a.fill((byte) 1);
    b.fill((byte) 2);
    a = null;
    assertTrue(gcUntil(() -> pool.lentBytes() == 5 * MIB));
    assertNotNull(pool.lend(5 * MIB), "a given-back block is lent again");
    assertEquals(10 * MIB, pool.residentBytes());
    assertEquals(2, b.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 5 * MIB - 1));
  }

  @Test
  void idleFreeBlocksOfOtherClassesAreReleasedToMakeRoom() throws Exception {
    ReceiveBlockPool pool = new ReceiveBlockPool(10 * MIB, 0);
    lendAndDrop(pool, 5 * MIB);
    assertTrue(gcUntil(() -> pool.lentBytes() == 0));
    assertEquals(5 * MIB, pool.residentBytes());
    MemorySegment eight = pool.lend(8 * MIB);
    assertNotNull(eight, "the free 5 MiB block makes room");
    assertEquals(8 * MIB, pool.residentBytes());
    assertEquals(1, pool.stats().released());
    // A lent block is never released: no room for another class while it is reachable.
    assertNull(pool.lend(6 * MIB));
    eight.fill((byte) 3);
  }

  @Test
  void freeBlocksUnusedForTheTrimTimeAreFreed() throws Exception {
    long trimAfter = TimeUnit.MILLISECONDS.toNanos(200);
    ReceiveBlockPool pool = new ReceiveBlockPool(64 * MIB, 0, trimAfter);
    lendAndDrop(pool, 5 * MIB);
    lendAndDrop(pool, 9 * MIB);
    assertTrue(gcUntil(() -> pool.lentBytes() == 0));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (pool.residentBytes() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertEquals(0, pool.residentBytes(), "an unused pool gives its memory back");
    assertEquals(2, pool.stats().released());
    assertNotNull(pool.lend(5 * MIB), "and allocates again when needed");
  }

  @Test
  void recentlyReturnedBlocksAreKeptForTheirClass() throws Exception {
    ReceiveBlockPool pool = new ReceiveBlockPool(10 * MIB); // 10 s before a free block is idle
    long address = lendAndDrop(pool, 5 * MIB);
    assertTrue(gcUntil(() -> pool.lentBytes() == 0));
    assertNull(pool.lend(8 * MIB), "the free block came back just now: heap for this one");
    assertEquals(0, pool.stats().released());
    assertEquals(address, pool.lend(5 * MIB).address(), "still there for its own class");
  }

  @Test
  void zeroCapTurnsThePoolOff() {
    ReceiveBlockPool pool = new ReceiveBlockPool(0);
    assertNull(pool.lend(5 * MIB));
    assertEquals(0, pool.residentBytes());
  }

  private static CopyOnceMarshaller<Everything> marshaller(ReceiveBlockPool pool) {
    MethodDescriptor.PrototypeMarshaller<Everything> grpc =
        (MethodDescriptor.PrototypeMarshaller<Everything>) ProtoUtils.marshaller(
            Everything.getDefaultInstance());
    return new CopyOnceMarshaller<>(grpc, GrpcProtoMarshaller.of(grpc), pool);
  }

  private static Everything message(long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    byte[] payload = new byte[6 * (int) MIB];
    random.nextBytes(payload);
    byte[] inner = new byte[1000];
    random.nextBytes(inner);
    return Everything.newBuilder().setPayload(ByteString.copyFrom(payload)).setText("text ü")
        .setNested(Part.newBuilder().setData(ByteString.copyFrom(inner)))
        .putBlobs(3, ByteString.copyFrom(inner, 0, 99)).build();
  }

  /** Parses {@code sent} as the marshaller would from shared memory (source: native memory). */
  private static Everything parseThroughPool(CopyOnceMarshaller<Everything> marshaller,
      Everything sent) {
    byte[] wire = sent.toByteArray();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment source = arena.allocate(wire.length);
      MemorySegment.copy(MemorySegment.ofArray(wire), 0, source, 0, wire.length);
      ByteString copy = marshaller.copyOf(source);
      return marshaller.parseCopy(copy);
    }
  }

  private static ByteString substringOfPayload(CopyOnceMarshaller<Everything> marshaller,
      Everything sent, int from, int to) {
    Everything parsed = parseThroughPool(marshaller, sent);
    assertEquals(sent, parsed);
    ByteString payload = parsed.getPayload();
    ByteBuffer view = payload.asReadOnlyByteBuffer();
    assertTrue(view.isDirect(), "the bytes field aliases the off-heap block");
    return payload.substring(from, to);
  }

  @Test
  void aSubstringOfAnAliasedFieldKeepsTheBlockUntilDropped() throws Exception {
    ReceiveBlockPool pool = new ReceiveBlockPool(64 * MIB);
    CopyOnceMarshaller<Everything> marshaller = marshaller(pool);
    Everything sent = message(1);
    ByteString kept = substringOfPayload(marshaller, sent, 1_000_000, 1_004_096);
    byte[] expected = sent.getPayload().substring(1_000_000, 1_004_096).toByteArray();
    long lent = pool.lentBytes();
    assertTrue(lent > 0, "parsed from a pooled block");
    // Everything but the substring is garbage now: the message, the field, the parent buffer.
    for (int i = 0; i < 5; i++) {
      System.gc();
      Thread.sleep(50);
    }
    assertEquals(lent, pool.lentBytes(), "block still lent while a substring is reachable");
    // A second message of the same class needs another block: the first is not recycled.
    Everything second = message(2);
    ByteString secondKept = substringOfPayload(marshaller, second, 0, 10);
    assertEquals(2 * lent, pool.lentBytes());
    assertEquals(2, pool.residentBytes() / lent);
    assertArrayEquals(expected, kept.toByteArray(), "bytes intact");
    assertEquals(second.getPayload().substring(0, 10), secondKept);
    // MemorySegment views of the substring keep it too.
    MemorySegment segmentView = MemorySegment.ofBuffer(kept.asReadOnlyByteBuffer());
    kept = null;
    secondKept = null;
    for (int i = 0; i < 5; i++) {
      System.gc();
      Thread.sleep(50);
    }
    assertEquals(expected[17], segmentView.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 17));
    assertTrue(pool.lentBytes() >= lent, "the segment view keeps the first block");
    segmentView = null;
    assertTrue(gcUntil(() -> pool.lentBytes() == 0), "both blocks given back once dropped");
    assertEquals(2 * lent, pool.residentBytes());
    // Recycled: the next message reuses a block instead of allocating.
    long reusedBefore = pool.stats().reused();
    Everything third = message(3);
    assertEquals(third, parseThroughPool(marshaller, third));
    assertEquals(reusedBefore + 1, pool.stats().reused());
    assertEquals(2 * lent, pool.residentBytes());
  }

  @Test
  void withoutRoomTheMessageIsParsedFromTheHeap() {
    ReceiveBlockPool pool = new ReceiveBlockPool(4 * MIB); // smaller than the message's class
    CopyOnceMarshaller<Everything> marshaller = marshaller(pool);
    Everything sent = message(4);
    Everything parsed = parseThroughPool(marshaller, sent);
    assertEquals(sent, parsed);
    assertArrayEquals(sent.toByteArray(), parsed.toByteArray());
    assertFalse(parsed.getPayload().asReadOnlyByteBuffer().isDirect(), "heap copy");
    assertEquals(1, pool.stats().refused());
    assertEquals(0, pool.residentBytes());
  }

  @Test
  void aClosedMappingFailsTheCopyAndTheBlockComesBack() throws Exception {
    ReceiveBlockPool pool = new ReceiveBlockPool(64 * MIB);
    CopyOnceMarshaller<Everything> marshaller = marshaller(pool);
    byte[] wire = message(5).toByteArray();
    int fd = Linux.memfdCreate("receive-pool-test");
    try {
      Linux.ftruncate(fd, wire.length);
      SharedMapping mapping = SharedMapping.map(fd, wire.length);
      MemorySegment.copy(MemorySegment.ofArray(wire), 0, mapping.memory(), 0, wire.length);
      MemorySegment extent = mapping.memory();
      assertEquals(message(5), marshaller.parseCopy(marshaller.copyOf(extent)));
      // The connection closes: the checked segment throws instead of reading other memory.
      mapping.close();
      assertThrows(IllegalStateException.class, () -> marshaller.copyOf(extent));
      assertEquals(2, pool.stats().lent());
      assertTrue(gcUntil(() -> pool.lentBytes() == 0), "the failed copy's block comes back");
    } finally {
      Linux.close(fd);
    }
  }

  @Test
  void theSharedPoolIsVisibleOverJmx() throws Exception {
    ReceiveBlockPool shared = ReceiveBlockPool.shared();
    Object cap = ManagementFactory.getPlatformMBeanServer().getAttribute(
        new ObjectName("io.grpcshm:type=ProtobufReceivePool"), "CapBytes");
    assertInstanceOf(Long.class, cap);
    assertEquals(shared.capBytes(), cap);
    assertTrue(shared.capBytes() > 0 && shared.capBytes() <= 512 * MIB);
  }
}
