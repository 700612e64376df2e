package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import io.grpcshm.DataMovement;
import io.grpcshm.MoveEvent;
import io.grpcshm.ShmCallOptions;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import io.grpcshm.codec.testing.Digest;
import io.grpcshm.dsa.FaultyMovers;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.internal.ArmedFaults;
import io.grpcshm.policy.CallFeatures;
import io.grpcshm.policy.Decision;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.SignalSource;
import io.grpcshm.policy.Signals;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Per-call data movement over grpc-shm: large off-heap {@code bytes} fields are moved into
 * shared memory by the mover the policy (or a fixed choice) picks, in the mode the call asks
 * for; every move is traced and counted; failing movers fall back to CPU copies without losing
 * data; other transports and heap payloads are untouched.
 */
class DataMovementTest {
  private static final int LARGE = 4 << 20;
  private static final long DEADLINE_S = 60;

  private static MoverRegistry movers;
  private static final ArmedFaults faults = new ArmedFaults();
  private static PolicyEngine policy;
  private static final List<MoveEvent> serverEvents = new CopyOnWriteArrayList<>();
  private static Server server;
  private static final List<ManagedChannel> channels = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    movers = FaultyMovers.open(MoverRegistry.Options.defaults().dsa(false).calibrate(false),
        faults);
    policy = PolicyEngine.builder().hostMovers(movers)
        .signals(Signals.fixed(0, 0, SignalSource.fixed(1))).build();
    // The server echoes the aliased request: its response's payload is a view of shared memory
    // (the relay case), moved by the server's own configuration.
    server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .dataMovement(DataMovement.cpuOnly().withTracer(serverEvents::add))
        .addService(ZeroCopyServices.rewrite(new BlobServiceImpl())).build().start();
  }

  @AfterAll
  static void stop() throws Exception {
    for (ManagedChannel c : channels) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    movers.close();
  }

  @BeforeEach
  void clearFaults() {
    faults.pauseWorkers(false);
    faults.badOpcodeNext(0);
    serverEvents.clear();
  }

  private static ManagedChannel channel(DataMovement movement, TransportMode mode) {
    ManagedChannel c = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(mode).maxInboundMessageSize(64 << 20).dataMovement(movement).build();
    channels.add(c);
    // A call before the ones under test: messages of calls started while the connection is
    // still being set up are serialised later, on another thread (grpc's delayed transport).
    stub(c).summarize(Blob.newBuilder().setName("warm-up").build());
    return c;
  }

  private static BlobServiceGrpc.BlobServiceBlockingStub stub(ManagedChannel c) {
    return BlobServiceGrpc.newBlockingStub(c).withInterceptors(ZeroCopyServices.clientInterceptor())
        .withDeadlineAfter(DEADLINE_S, TimeUnit.SECONDS);
  }

  /** A blob whose payload lives off-heap (as tensors from a native library or a file would). */
  private static Blob offHeapBlob(int size, long seed) {
    byte[] pattern = TestMessages.pattern(size, seed);
    ByteBuffer direct = ByteBuffer.allocateDirect(size).put(pattern).flip();
    return TestMessages.blob(0, 5, seed).toBuilder()
        .setPayload(UnsafeByteOperations.unsafeWrap(direct)).build();
  }

  private static void assertDigest(Blob sent, Digest got) {
    assertEquals(sent.getPayload().size(), got.getPayloadSize());
    assertEquals(TestMessages.crc(sent.getPayload()), got.getPayloadCrc(), "payload bytes");
    assertEquals(sent.getItemsCount(), got.getItemCount());
    assertEquals(sent.getName(), got.getName());
  }

  @Test
  void thePolicysChoiceIsHonouredAndTraced() {
    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    DataMovement movement = DataMovement.of(policy, movers).withTracer(events::add);
    ManagedChannel c = channel(movement, TransportMode.SHM_ONLY);
    // No mode named anywhere: the move runs in SYNC (the marshaller waits for it), and the
    // policy decides among the SYNC candidates.
    Decision expected = policy.decide(new CallFeatures(LARGE, CallFeatures.REUSE_UNKNOWN, 0, 0, 1),
        Mode.SYNC);

    Blob request = offHeapBlob(LARGE, 1);
    assertDigest(request, stub(c).summarize(request));

    assertEquals(1, events.size(), "one move: " + events);
    MoveEvent e = events.get(0);
    assertEquals(BlobServiceGrpc.getSummarizeMethod().getFullMethodName(), e.method());
    assertEquals(LARGE, e.bytes());
    assertEquals(expected.mover(), e.mover(), "the policy's mover");
    assertEquals(expected.cacheInjection(), e.cacheInjection());
    assertEquals(Mode.SYNC, e.mode(), "no override: SYNC");
    assertEquals("model", e.basis());
    assertTrue(e.predictedMicros() > 0, "prediction " + e.predictedMicros());
    assertTrue(e.observedMicros() > 0);
    assertFalse(e.cpuFallback(), e.note());
    DataMovement.MoverCounters counted = movement.counters(expected.mover());
    assertEquals(1, counted.moves());
    assertEquals(LARGE, counted.bytes());
  }

  @Test
  void theDefaultsOpenTheMoversInTheBackgroundAndCopyOnTheCpuMeanwhile() {
    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    ManagedChannel c = channel(DataMovement.defaults().withTracer(events::add),
        TransportMode.SHM_ONLY);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_S);
    long seed = 500;
    while (events.isEmpty() || events.getLast().basis().equals("warm-up")) {
      assertTrue(System.nanoTime() < deadline, "movers never became ready: " + events);
      Blob request = offHeapBlob(LARGE, seed++);
      assertDigest(request, stub(c).summarize(request));
    }
    for (MoveEvent e : events.subList(0, events.size() - 1)) {
      assertEquals("warm-up", e.basis(), "CPU copies until the movers are open");
      assertEquals(MoverKind.CPU, e.mover());
    }
    assertEquals("model", events.getLast().basis(), "then the shipped model decides");
  }

  @Test
  void everyMoverAndModeDeliversTheSameBytes() {
    for (MoverKind kind : List.of(MoverKind.CPU, MoverKind.SOFTWARE)) {
      List<MoveEvent> events = new CopyOnWriteArrayList<>();
      DataMovement movement = DataMovement.cpuOnly().withFixedMover(kind, movers)
          .withTracer(events::add);
      ManagedChannel c = channel(movement, TransportMode.SHM_ONLY);
      long seed = 10;
      for (Mode mode : Mode.values()) {
        Blob request = offHeapBlob(LARGE + (int) seed, seed++);
        assertDigest(request, stub(c).withOption(ShmCallOptions.MOVER_MODE, mode)
            .summarize(request));
        MoveEvent e = events.getLast();
        assertEquals(kind, e.mover());
        assertEquals(mode, e.mode(), "the call's mode");
        assertEquals("fixed", e.basis());
        assertFalse(e.cpuFallback(), e.note());
      }
      assertEquals(3, movement.counters(kind).moves());
    }
  }

  @Test
  void modesSwitchMidStreamAndSmallMessagesMixWithLargeOnes() throws Exception {
    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    DataMovement movement = DataMovement.cpuOnly().withFixedMover(MoverKind.SOFTWARE, movers)
        .withTracer(events::add);
    ManagedChannel c = channel(movement, TransportMode.SHM_ONLY);
    LinkedBlockingQueue<Object> answers = new LinkedBlockingQueue<>();
    StreamObserver<Blob> requests = BlobServiceGrpc.newStub(c)
        .withInterceptors(ZeroCopyServices.clientInterceptor())
        .withDeadlineAfter(DEADLINE_S, TimeUnit.SECONDS)
        .chat(new StreamObserver<>() {
          @Override
          public void onNext(Blob b) {
            // Answers may alias this side's shared memory: keep a heap copy, release the view.
            try (ZeroCopyMessage<Blob> m = ZeroCopyMessage.of(b)) {
              answers.add(TestMessages.crc(m.get().getPayload()));
            }
          }

          @Override
          public void onError(Throwable t) {
            answers.add(t);
          }

          @Override
          public void onCompleted() {}
        });
    List<Mode> modes = List.of(Mode.SYNC, Mode.ASYNC, Mode.PIPELINED, Mode.ASYNC, Mode.SYNC);
    List<Long> expected = new ArrayList<>();
    long seed = 100;
    for (Mode mode : modes) {
      Blob small = TestMessages.blob(100, 1, seed++);
      requests.onNext(small);
      expected.add(TestMessages.crc(small.getPayload()));
      Blob large = offHeapBlob(LARGE, seed++);
      try (DataMovement.ModeScope scope = DataMovement.scopedMode(mode)) {
        requests.onNext(large);
      }
      expected.add(TestMessages.crc(large.getPayload()));
    }
    for (Long crc : expected) {
      assertEquals(crc, answers.poll(DEADLINE_S, TimeUnit.SECONDS), "echo in order, intact");
    }
    requests.onCompleted();
    assertEquals(modes, events.stream().map(MoveEvent::mode).toList(),
        "one move per large message, in the mode in force when it was sent");
    assertTrue(events.stream().allMatch(e -> e.bytes() == LARGE), "small messages are not moved");
    // The server's responses were views of its shared memory: moved (relayed) too.
    assertEquals(modes.size(), serverEvents.size(), "server relayed the large payloads");
  }

  @Test
  void failingMoversFallBackToCpuCopiesWithoutLosingData() {
    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    DataMovement movement = DataMovement.cpuOnly().withFixedMover(MoverKind.SOFTWARE, movers)
        .withTracer(events::add);
    ManagedChannel c = channel(movement, TransportMode.SHM_ONLY);
    long seed = 200;
    for (Mode mode : Mode.values()) {
      faults.badOpcodeNext(1); // the engine completes the next descriptor with an error
      Blob request = offHeapBlob(LARGE, seed++);
      assertDigest(request, stub(c).withOption(ShmCallOptions.MOVER_MODE, mode)
          .summarize(request));
      MoveEvent e = events.getLast();
      assertTrue(e.cpuFallback(), mode + ": " + e);
      assertTrue(e.note().contains("SOFTWARE failed"), e.note());
    }
    assertEquals(3, movement.counters(MoverKind.SOFTWARE).cpuFallbacks());

    // A mover that is not there (no DSA on this machine, or disabled here) is never fatal.
    List<MoveEvent> dsaEvents = new CopyOnWriteArrayList<>();
    ManagedChannel d = channel(DataMovement.cpuOnly().withFixedMover(MoverKind.DSA, movers)
        .withTracer(dsaEvents::add), TransportMode.SHM_ONLY);
    Blob request = offHeapBlob(LARGE, seed);
    assertDigest(request, stub(d).summarize(request));
    assertTrue(dsaEvents.getFirst().cpuFallback());
    assertTrue(dsaEvents.getFirst().note().contains("DSA unavailable"), dsaEvents.getFirst().note());
  }

  @Test
  void asynchronousMovesCompleteBeforeTheMessageIsSent() throws Exception {
    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    DataMovement movement = DataMovement.cpuOnly().withFixedMover(MoverKind.SOFTWARE, movers)
        .withTracer(events::add);
    ManagedChannel c = channel(movement, TransportMode.SHM_ONLY);
    ExecutorService caller = Executors.newSingleThreadExecutor();
    try {
      for (Mode mode : List.of(Mode.ASYNC, Mode.PIPELINED)) {
        Blob request = offHeapBlob(LARGE, 300 + mode.ordinal());
        int before = events.size();
        faults.pauseWorkers(true); // the copy cannot run until the workers resume
        Future<Digest> answer = caller.submit(() -> stub(c)
            .withOption(ShmCallOptions.MOVER_MODE, mode).summarize(request));
        // While the engine holds the copy, the message must not leave: had it left unfinished,
        // the server would answer (with the digest of what it read). A slow call can only make
        // this pass, never fail.
        Thread.sleep(300);
        assertFalse(answer.isDone(), mode + ": answered while the engine was paused");
        faults.pauseWorkers(false);
        // The bytes the server read are the whole request: the move completed before sending.
        assertDigest(request, answer.get(60, TimeUnit.SECONDS));
        assertEquals(before + 1, events.size(), mode + ": one move: " + events);
        MoveEvent e = events.getLast();
        assertFalse(e.cpuFallback(), e.note());
      }
    } finally {
      faults.pauseWorkers(false);
      caller.shutdownNow();
    }
  }

  @Test
  void heapPayloadsAreCopiedOnTheCpuAndOtherTransportsNotMoved() {
    List<MoveEvent> events = new CopyOnWriteArrayList<>();
    DataMovement movement = DataMovement.of(policy, movers).withTracer(events::add);
    Function<TransportMode, ManagedChannel> open = mode -> channel(movement, mode);

    ManagedChannel shm = open.apply(TransportMode.SHM_ONLY);
    Blob heap = TestMessages.blob(LARGE, 3, 400);
    assertDigest(heap, stub(shm).summarize(heap));
    assertEquals(1, events.size(), "heap payloads: copied by grpc's framer, traced: " + events);
    assertEquals("heap", events.get(0).basis());
    assertEquals(MoverKind.CPU, events.get(0).mover());
    // protobuf's coded stream fills its ≤ 4 KiB buffer first and writes the rest in one go.
    assertTrue(events.get(0).bytes() > LARGE - 4096, "bytes " + events.get(0).bytes());
    events.clear();

    ManagedChannel tcp = open.apply(TransportMode.TCP_ONLY);
    Blob offHeap = offHeapBlob(LARGE, 401);
    assertDigest(offHeap, stub(tcp).summarize(offHeap));
    assertTrue(events.isEmpty(), "over TCP the codec writes through the stream: " + events);

    // Below the threshold: copied without a decision.
    ManagedChannel small = channel(movement.withThreshold(LARGE + 1), TransportMode.SHM_ONLY);
    assertDigest(offHeap, stub(small).summarize(offHeap));
    assertTrue(events.isEmpty(), "below the threshold: " + events);
    ByteString payload = offHeap.getPayload();
    assertNotEquals(0, payload.size());
  }
}
