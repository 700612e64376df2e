package io.grpcshm.internal.movement;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.DataMovement;
import io.grpcshm.MoveEvent;
import io.grpcshm.dsa.FaultyMovers;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverPolicy;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.internal.ArmedFaults;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The bulk-write protocol against a fake transport buffer, with a pausable software engine. */
class BulkSessionTest {
  private static final int SIZE = 3 << 20;
  private static MoverRegistry movers;
  private static final ArmedFaults faults = new ArmedFaults();
  private final List<MoveEvent> events = new CopyOnWriteArrayList<>();
  private final DataMovement software = DataMovement.cpuOnly()
      .withFixedMover(MoverKind.SOFTWARE, movers()).withTracer(events::add);

  private static MoverRegistry movers() {
    if (movers == null) {
      movers = FaultyMovers.open(MoverRegistry.Options.defaults().dsa(false).calibrate(false),
          faults);
    }
    return movers;
  }

  @BeforeAll
  static void open() {
    movers();
  }

  @AfterAll
  static void close() {
    movers.close();
  }

  @AfterEach
  void resume() {
    faults.pauseWorkers(false);
    BulkSession.finish();
  }

  /**
   * A transport buffer over plain native memory. Like grpc's framer, which allocates a buffer on
   * the thread that then writes into it, a test calls {@link #allocate()} on the writing thread.
   */
  static final class FakeBuffer implements BulkTarget {
    final Arena arena = Arena.ofShared();
    final MemorySegment memory;
    final MoveContext context;
    long written;
    boolean sent;
    BulkSession session;
    List<BulkSession.Move> moves = new ArrayList<>();

    FakeBuffer(long size, DataMovement movement, Mode callMode) {
      memory = arena.allocate(size, 64);
      context = new MoveContext("test/Method", movement.settings(), callMode,
          MoverPolicy.REUSE_UNKNOWN);
    }

    FakeBuffer allocate() {
      session = BulkSession.allocated(this);
      return this;
    }

    void writeHeader() {
      memory.set(ValueLayout.JAVA_BYTE, written++, (byte) 0x0a);
    }

    void send() {
      session.retired(this);
      sent = true;
    }

    @Override public MemorySegment memory() { return memory; }
    @Override public long written() { return written; }
    @Override public void advance(long n) { written += n; }
    @Override public boolean writable() { return !sent; }
    @Override public MoveContext context() { return context; }
    @Override
    public synchronized boolean addMove(BulkSession.Move m) {
      return moves.add(m);
    }

    @Override
    public synchronized void moveDone(BulkSession.Move m) {
      moves.remove(m);
    }

    @Override
    public synchronized List<BulkSession.Move> moves() {
      return moves.isEmpty() ? null : List.copyOf(moves);
    }
  }

  private static ByteBuffer offHeap(int size, long seed) {
    byte[] b = new byte[size];
    new SplittableRandom(seed).nextBytes(b);
    return ByteBuffer.allocateDirect(size).put(b).flip();
  }

  private static void assertCopied(ByteBuffer src, FakeBuffer buffer, long at) {
    byte[] expected = new byte[src.capacity()];
    src.duplicate().clear().get(expected);
    byte[] actual = buffer.memory.asSlice(at, expected.length).toArray(ValueLayout.JAVA_BYTE);
    assertArrayEquals(expected, actual);
  }

  @Test
  void onlyABufferThatReceivedTheBytesSinceMarkIsATarget() throws Exception {
    FakeBuffer buffer = new FakeBuffer(SIZE + 64, software, Mode.SYNC).allocate();
    ByteBuffer src = offHeap(SIZE, 1);
    assertFalse(BulkSession.tryMove(src), "nothing written since no mark");
    buffer.writeHeader();
    assertFalse(BulkSession.tryMove(src), "written before mark()");
    BulkSession.mark();
    // e.g. a heap buffer took the header: the latest shared-memory buffer did not move
    assertFalse(BulkSession.tryMove(src));
    FakeBuffer elsewhere = new FakeBuffer(SIZE + 64, software, Mode.SYNC);
    Thread other = Thread.ofPlatform().start(elsewhere::allocate);
    other.join(10_000);
    BulkSession.mark();
    elsewhere.writeHeader();
    assertFalse(BulkSession.tryMove(src), "the bytes went to a buffer of another thread");
    BulkSession.mark();
    buffer.writeHeader();
    assertFalse(BulkSession.tryMove(ByteBuffer.allocate(SIZE)), "heap sources are not moved");
    BulkSession.mark();
    buffer.writeHeader();
    assertFalse(BulkSession.tryMove(offHeap(SIZE + 64, 2)), "larger than the free room");
    assertEquals(0, src.position(), "nothing consumed");
    assertTrue(events.isEmpty());
    assertEquals(3, buffer.written, "only the three headers");
    BulkSession.mark();
    buffer.writeHeader();
    buffer.send();
    assertFalse(BulkSession.tryMove(src), "sent");
  }

  @Test
  void aBufferAllocatedAfterMarkTakesTheMove() {
    FakeBuffer first = new FakeBuffer(SIZE + 64, software, Mode.SYNC).allocate();
    first.writeHeader();
    BulkSession.mark();
    // The framer's buffer was full: the header went into a new one.
    FakeBuffer second = new FakeBuffer(SIZE + 64, software, Mode.SYNC).allocate();
    second.writeHeader();
    ByteBuffer src = offHeap(SIZE, 3);
    assertTrue(BulkSession.tryMove(src));
    assertCopied(src, second, 1);
    assertEquals(1, first.written);
    assertEquals(1, events.size());
  }

  @Test
  void syncWaitsAsyncAndPipelinedReturnAtOnceAndCompleteAtFinish() throws Exception {
    for (Mode mode : Mode.values()) {
      events.clear();
      FakeBuffer buffer = new FakeBuffer(SIZE + 64, software, mode);
      ByteBuffer src = offHeap(SIZE, mode.ordinal());
      faults.pauseWorkers(true);
      CountDownLatch returned = new CountDownLatch(1);
      Thread sender = Thread.ofPlatform().start(() -> {
        buffer.allocate();
        BulkSession.mark();
        buffer.writeHeader();
        assertTrue(BulkSession.tryMove(src));
        returned.countDown();
        BulkSession.finish();
      });
      // While the engine stays paused the move cannot complete, so an asynchronous mode may
      // take as long as a busy machine needs to return; a synchronous one must not return at
      // all (a short wait can only let that check pass wrongly, never fail wrongly).
      boolean returnedWhilePaused = returned.await(mode == Mode.SYNC ? 300 : 30_000,
          TimeUnit.MILLISECONDS);
      assertEquals(mode != Mode.SYNC, returnedWhilePaused, mode + ": tryMove returned while the "
          + "engine was paused");
      assertTrue(events.isEmpty(), mode + ": completed while paused: " + events);
      faults.pauseWorkers(false);
      sender.join(10_000);
      assertFalse(sender.isAlive());
      assertEquals(1 + SIZE, buffer.written);
      assertEquals(SIZE, src.position(), "source consumed");
      assertCopied(src, buffer, 1);
      assertEquals(1, events.size());
      assertEquals(mode, events.get(0).mode());
      assertFalse(events.get(0).cpuFallback(), events.get(0).note());
    }
  }

  @Test
  void sendingABufferCompletesItsMovesFirst() throws Exception {
    FakeBuffer buffer = new FakeBuffer(SIZE + 64, software, Mode.ASYNC).allocate();
    ByteBuffer src = offHeap(SIZE, 7);
    faults.pauseWorkers(true);
    BulkSession.mark();
    buffer.writeHeader();
    assertTrue(BulkSession.tryMove(src));
    // grpc's framer may send the buffer from another thread before the marshaller finishes.
    Thread transport = Thread.ofPlatform().start(buffer::send);
    transport.join(200);
    assertTrue(transport.isAlive(), "send waits for the move");
    faults.pauseWorkers(false);
    transport.join(10_000);
    assertTrue(buffer.sent);
    assertCopied(src, buffer, 1);
    assertEquals(1, events.size());
    BulkSession.finish(); // nothing left: the transport completed it
    assertEquals(1, events.size());
    assertNull(buffer.moves());
  }

  @Test
  void aSendRacingTheMarshallersFinishStillWaitsForTheMove() throws Exception {
    FakeBuffer buffer = new FakeBuffer(SIZE + 64, software, Mode.ASYNC);
    ByteBuffer src = offHeap(SIZE, 8);
    faults.pauseWorkers(true);
    CountDownLatch moved = new CountDownLatch(1);
    Thread marshaller = Thread.ofPlatform().start(() -> {
      buffer.allocate();
      BulkSession.mark();
      buffer.writeHeader();
      BulkSession.tryMove(src);
      moved.countDown();
      BulkSession.finish();
    });
    // The marshaller's thread is collecting the move when grpc sends the (full) buffer from
    // the thread that drains its flow-control queue: the send must wait too.
    assertTrue(moved.await(10, TimeUnit.SECONDS));
    Thread.sleep(50);
    Thread transport = Thread.ofPlatform().start(buffer::send);
    transport.join(200);
    assertTrue(transport.isAlive(), "send waits while the other thread completes the move");
    faults.pauseWorkers(false);
    transport.join(10_000);
    marshaller.join(10_000);
    assertCopied(src, buffer, 1);
    assertEquals(1, events.size());
  }

  @Test
  void modeScopesOverrideTheCallAndNest() {
    FakeBuffer buffer = new FakeBuffer(4L * SIZE, software, Mode.SYNC).allocate();
    try (DataMovement.ModeScope outer = DataMovement.scopedMode(Mode.ASYNC)) {
      move(buffer, 1);
      try (DataMovement.ModeScope inner = DataMovement.scopedMode(Mode.PIPELINED)) {
        move(buffer, 2);
      }
      move(buffer, 3);
    }
    move(buffer, 4);
    BulkSession.finish();
    // Events come at completion (async ones at finish()); sizes tell the moves apart.
    assertEquals(List.of(Mode.ASYNC, Mode.PIPELINED, Mode.ASYNC, Mode.SYNC),
        events.stream().sorted(java.util.Comparator.comparingLong(MoveEvent::bytes))
            .map(MoveEvent::mode).toList());
  }

  /** A policy that picks the CPU and expects {@code expected} µs (or throws, when null). */
  private static MoverPolicy expecting(Double expected, List<Long> askedAtBytesMoved,
      FakeBuffer[] target) {
    return new MoverPolicy() {
      @Override
      public io.grpcshm.dsa.MoverChoice choose(long bytes, int reuseWindow, Mode mode) {
        return MoverPolicy.breakEven(movers()).choose(bytes, reuseWindow, mode);
      }

      @Override
      public double expectedCopyMicros(MoverKind mover, long bytes) {
        // What the target held when asked: the copy must not have run yet.
        askedAtBytesMoved.add(target[0] == null ? -1 : target[0].written);
        if (expected == null) {
          throw new IllegalStateException("estimate failed");
        }
        return expected;
      }

      @Override
      public String describe() {
        return "test policy";
      }
    };
  }

  /**
   * With a tracer, the policy's expected copy cost is asked before the copy and reported with
   * the move; a policy whose estimate throws still gets its move (the event says NaN).
   */
  @Test
  void theExpectedCopyIsAskedBeforeTheCopyAndNeverFailsTheMove() {
    for (Double expected : new Double[] {123.0, null}) {
      events.clear();
      List<Long> asked = new CopyOnWriteArrayList<>();
      FakeBuffer[] target = new FakeBuffer[1];
      DataMovement movement = DataMovement.of(expecting(expected, asked, target), movers())
          .withTracer(events::add);
      FakeBuffer buffer = new FakeBuffer(2L * SIZE, movement, Mode.SYNC).allocate();
      target[0] = buffer;
      ByteBuffer src = offHeap(SIZE, 7);
      BulkSession.mark();
      buffer.writeHeader();
      assertTrue(BulkSession.tryMove(src));
      BulkSession.finish();
      assertCopied(src, buffer, 1);
      assertEquals(List.of(1L), asked, "asked once, with only the header written");
      assertEquals(1, events.size());
      if (expected != null) {
        assertEquals(123.0, events.get(0).expectedCopyMicros());
      } else {
        assertTrue(Double.isNaN(events.get(0).expectedCopyMicros()));
      }
    }
  }

  private static void move(FakeBuffer buffer, long seed) {
    BulkSession.mark();
    buffer.writeHeader();
    ByteBuffer src = offHeap(SIZE / 2 + (int) seed, seed);
    assertTrue(BulkSession.tryMove(src));
  }
}
