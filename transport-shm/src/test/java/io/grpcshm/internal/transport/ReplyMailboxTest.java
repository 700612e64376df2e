package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpcshm.Eventually;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.hardening.Hardening;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.MailboxLayout;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.RegionLayout;
import io.grpcshm.internal.nativeio.Futex;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingProducer;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Reply mailboxes (PROTOCOL.md §7.5): a blocking unary call names a page of the client's pool,
 * the server writes the answer there and wakes the caller. Against hand-written servers (the
 * wire format as the document states it, a server that ignores the page, a hostile one, one that
 * never answers or dies) and against our own server (answers of every size, errors, timeouts).
 */
class ReplyMailboxTest {
  private static final VarHandle WORD = ValueLayout.JAVA_INT.varHandle();

  /**
   * Hand-written servers poll their ring every millisecond: on a busy machine that can outlast
   * the caller's 20 ms wait budget, after which the caller gives the page up and a server that
   * answers there anyway is never heard. Tests that need the budget set it themselves.
   */
  @BeforeEach
  void patientCallers() {
    ReplyMailbox.setWaitBudgetNanos(TimeUnit.SECONDS.toNanos(60));
  }

  @AfterEach
  void defaultBudget() {
    ReplyMailbox.setWaitBudgetNanos(ReplyMailbox.DEFAULT_WAIT_BUDGET_NANOS);
  }
  private static final byte[] REQUEST = "ping-0123456789".getBytes();

  private record Frame(int type, int flags, int reserved, int streamId, byte[] body) {}

  /** What a hand-written server does once the call's request is complete. */
  private interface Script {
    void answer(HandWrittenServer server, Frame headers) throws Exception;
  }

  /** One connection, our handshake (mailboxes offered or not), then a script. */
  private static final class HandWrittenServer implements AutoCloseable {
    final int port;
    final UnixSeqpacketSocket listen;
    final List<Frame> frames = new CopyOnWriteArrayList<>();
    final CompletableFuture<Void> done;
    Handshakes.Established connection;
    RingProducer tx;
    MemorySegment clientPool;

    HandWrittenServer(boolean offerMailboxes, Script script) throws Exception {
      try (ServerSocket free = new ServerSocket(0)) {
        port = free.getLocalPort(); // only a number for the rendezvous name
      }
      listen = UnixSeqpacketSocket.listen(ShmAddress.defaultRendezvous(port), 4);
      ShmTransportConfig config =
          ShmTransportConfig.defaults().toBuilder().replyMailbox(offerMailboxes).build();
      // Its own thread: the common pool may have a single one on a small machine.
      done = new CompletableFuture<>();
      Thread thread = new Thread(() -> {
        try {
          serve(config, script);
          done.complete(null);
        } catch (Throwable t) {
          done.completeExceptionally(t);
        }
      }, "hand-written-server-" + port);
      thread.setDaemon(true);
      thread.start();
    }

    private void serve(ShmTransportConfig config, Script script) {
      try (UnixSeqpacketSocket accepted = listen.accept()) {
        connection = Handshakes.server(accepted, config);
        try {
          RegionLayout layout = connection.layout();
          RingConsumer rx = new RingConsumer(layout.ringHeader(connection.region(), true),
              layout.ringData(connection.region(), true), layout.ringCapacity());
          tx = new RingProducer(layout.ringHeader(connection.region(), false),
              layout.ringData(connection.region(), false), layout.ringCapacity());
          clientPool = connection.region().asSlice(layout.clientToServerPoolOffset(),
              layout.poolSize());
          while (true) {
            Frame headers = awaitRequest(rx);
            if (headers == null) {
              return; // the client hung up
            }
            script.answer(this, headers);
          }
        } finally {
          connection.socket().close();
          connection.mapping().close();
        }
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }

    /** The next call's REQUEST_HEADERS, once its END_STREAM arrived too; null on hang-up. */
    private Frame awaitRequest(RingConsumer rx) throws Exception {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      Frame headers = null;
      boolean ended = false;
      byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
      int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
      while (!ended && System.nanoTime() < deadline) {
        int before = frames.size();
        rx.poll((d, at, length) -> frames.add(new Frame(
            d.get(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET) & 0xff,
            d.get(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET) & 0xff,
            d.get(ValueLayout.JAVA_SHORT_UNALIGNED, at + FrameLayout.RESERVED_OFFSET) & 0xffff,
            d.get(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET),
            RawRecords.bytes(d, at + FrameLayout.HEADER_LENGTH,
                length - FrameLayout.HEADER_LENGTH))), 16);
        for (int i = before; i < frames.size(); i++) {
          Frame f = frames.get(i);
          if (f.type() == FrameLayout.TYPE_REQUEST_HEADERS) {
            headers = f;
          }
          ended |= headers != null && f.streamId() == headers.streamId()
              && (f.flags() & FrameLayout.FLAG_END_STREAM) != 0;
        }
        if (frames.size() == before) {
          // The client's WAKE messages are dropped; its hang-up ends the server.
          if (connection.socket().tryReceive(buf, fds) == -1) {
            return null;
          }
          Thread.sleep(1);
        }
      }
      return ended ? headers : null;
    }

    /** Writes {@code records} into mailbox {@code page} and stores {@code state}; wakes. */
    void fillMailbox(int page, byte[] records, int length, int state) {
      long at = (long) page * MailboxLayout.SIZE;
      MemorySegment.copy(records, 0, clientPool, ValueLayout.JAVA_BYTE,
          at + MailboxLayout.RECORDS_OFFSET, Math.min(records.length,
              MailboxLayout.RECORDS_CAPACITY));
      clientPool.set(ValueLayout.JAVA_INT, at + MailboxLayout.LENGTH_OFFSET, length);
      storeState(page, state);
    }

    /** Stores a final state; wakes the caller if it announced sleep (PROTOCOL.md §7.5). */
    void storeState(int page, int state) {
      long at = (long) page * MailboxLayout.SIZE + MailboxLayout.STATE_OFFSET;
      int previous = (int) WORD.getAndSet(clientPool, at, state);
      if (previous == MailboxLayout.STATE_SLEEPING) {
        Futex.wake(clientPool.address() + at);
      }
    }

    void answerOnRing(int streamId, byte[] response) throws Exception {
      RawRecords.write(tx, FrameLayout.TYPE_RESPONSE_HEADERS, 0, streamId,
          RawRecords.metadata(new Metadata()));
      RawRecords.write(tx, FrameLayout.TYPE_DATA_INLINE, 0, streamId,
          RawRecords.grpcMessage(response));
      RawRecords.write(tx, FrameLayout.TYPE_TRAILERS, 0, streamId,
          RawRecords.metadata(okTrailers()));
      connection.socket().sendWake();
    }

    @Override
    public void close() {
      listen.close();
    }
  }


  private static Metadata okTrailers() {
    Metadata trailers = new Metadata();
    trailers.put(Metadata.Key.of("grpc-status", Metadata.ASCII_STRING_MARSHALLER), "0");
    return trailers;
  }


  /** One record as PROTOCOL.md §5 lays it out (header + body), for a mailbox. */
  private static byte[] record(int type, int flags, int streamId, byte[] body) {
    return ByteBuffer.allocate(FrameLayout.HEADER_LENGTH + body.length)
        .order(ByteOrder.LITTLE_ENDIAN).putInt(FrameLayout.HEADER_LENGTH + body.length)
        .put((byte) type).put((byte) flags).putShort((short) 0).putInt(streamId).put(body)
        .array();
  }

  /** A whole unary answer: headers, the message, OK trailers. */
  private static byte[] answerRecords(int streamId, byte[] response) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(record(FrameLayout.TYPE_RESPONSE_HEADERS, 0, streamId,
        RawRecords.metadata(new Metadata())));
    out.writeBytes(record(FrameLayout.TYPE_DATA_INLINE, 0, streamId,
        RawRecords.grpcMessage(response)));
    out.writeBytes(record(FrameLayout.TYPE_TRAILERS, 0, streamId,
        RawRecords.metadata(okTrailers())));
    return out.toByteArray();
  }

  /**
   * A channel already connected: a call made while it connects is replayed by grpc from a queue
   * on another stream's terms and never names a mailbox (ShmClientTransport#blockingCaller).
   */
  private static ManagedChannel channel(int port) throws InterruptedException {
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    assertTrue(Eventually.holds(
        () -> channel.getState(true) == io.grpc.ConnectivityState.READY, 30), "connected");
    return channel;
  }

  /** The server's first request named a reply mailbox (the case under test really waited there). */
  private static void assertNamedMailbox(HandWrittenServer server) {
    Frame headers = server.frames.stream()
        .filter(f -> f.type() == FrameLayout.TYPE_REQUEST_HEADERS).findFirst().orElseThrow();
    assertEquals(MailboxLayout.FLAG_REPLY_MAILBOX,
        headers.flags() & MailboxLayout.FLAG_REPLY_MAILBOX, "REQUEST_HEADERS named a mailbox");
  }

  /** The server's first frame is a REQUEST_HEADERS without flags or a page index. */
  private static void assertNamedNoMailbox(HandWrittenServer server) {
    Frame headers = server.frames.get(0);
    assertEquals(FrameLayout.TYPE_REQUEST_HEADERS, headers.type());
    assertEquals(0, headers.flags());
    assertEquals(0, headers.reserved());
  }

  private static byte[] blockingCall(ManagedChannel channel, long deadlineMillis) {
    return ClientCalls.blockingUnaryCall(channel, Hardening.UNARY,
        CallOptions.DEFAULT.withDeadlineAfter(deadlineMillis, TimeUnit.MILLISECONDS), REQUEST);
  }

  private static void shutdown(ManagedChannel channel) throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  // ---- the wire format, against hand-written servers -------------------------------------------

  @Test
  void blockingCallNamesAMailboxAndTakesTheAnswerWrittenThere() throws Exception {
    byte[] response = "pong from the mailbox".getBytes();
    try (HandWrittenServer server = new HandWrittenServer(true, (s, headers) -> {
      assertEquals(MailboxLayout.FLAG_REPLY_MAILBOX,
          headers.flags() & MailboxLayout.FLAG_REPLY_MAILBOX);
      byte[] records = answerRecords(headers.streamId(), response);
      s.fillMailbox(headers.reserved(), records, records.length, MailboxLayout.STATE_FILLED);
    })) {
      ManagedChannel channel = channel(server.port);
      try {
        for (int i = 0; i < 3; i++) { // the page comes back and serves the next call
          assertArrayEquals(response, blockingCall(channel, 30_000));
        }
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
      // Nothing of the three calls' answers travelled on the ring; each named a page.
      assertEquals(3, server.frames.stream()
          .filter(f -> f.type() == FrameLayout.TYPE_REQUEST_HEADERS).count());
    }
  }

  /** A call made by {@code caller} against a server answering on the ring; returns its answer. */
  private interface Caller {
    byte[] call(ManagedChannel channel) throws Exception;
  }

  /** The call gets the ring's answer and names no page, whether or not the server offers them. */
  private static void assertCallNamesNoMailbox(boolean serverOffers, Caller caller)
      throws Exception {
    byte[] response = "pong".getBytes();
    try (HandWrittenServer server = new HandWrittenServer(serverOffers,
        (s, headers) -> s.answerOnRing(headers.streamId(), response))) {
      ManagedChannel channel = channel(server.port);
      try {
        assertArrayEquals(response, caller.call(channel));
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
      assertNamedNoMailbox(server);
    }
  }

  @Test
  void futureStubCallsAndStreamingCallsNameNoMailbox() throws Exception {
    assertCallNamesNoMailbox(true, channel -> ClientCalls.futureUnaryCall(
        channel.newCall(Hardening.UNARY,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS)), REQUEST)
        .get(30, TimeUnit.SECONDS));
  }

  @Test
  void blockingCallOnAVirtualThreadNamesNoMailbox() throws Exception {
    assertCallNamesNoMailbox(true, channel -> {
      // A futex wait would pin the virtual thread's carrier: such callers park in grpc.
      AtomicReference<byte[]> got = new AtomicReference<>();
      Thread caller = Thread.ofVirtual().start(() -> got.set(blockingCall(channel, 30_000)));
      caller.join(TimeUnit.SECONDS.toMillis(30));
      return got.get();
    });
  }

  @Test
  void serverThatDoesNotOfferMailboxesIsNeverNamedOne() throws Exception {
    assertCallNamesNoMailbox(false, channel -> blockingCall(channel, 30_000));
  }

  @Test
  void answerOnTheRingEndsTheWaitAndAnUnreleasedPageIsNotReused() throws Exception {
    byte[] response = "pong on the ring".getBytes();
    try (HandWrittenServer server = new HandWrittenServer(true,
        (s, headers) -> s.answerOnRing(headers.streamId(), response))) {
      ManagedChannel channel = channel(server.port);
      try {
        assertArrayEquals(response, blockingCall(channel, 30_000));
        assertArrayEquals(response, blockingCall(channel, 30_000));
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
      List<Frame> requests = server.frames.stream()
          .filter(f -> f.type() == FrameLayout.TYPE_REQUEST_HEADERS).toList();
      assertEquals(2, requests.size());
      assertTrue((requests.get(0).flags() & MailboxLayout.FLAG_REPLY_MAILBOX) != 0);
      // The server never stored a final state in the first page: it may still write it.
      assertNotEquals(requests.get(0).reserved(), requests.get(1).reserved());
    }
  }

  @Test
  void callerThatOutwaitsItsBudgetGivesThePageUpAndGetsTheAnswerOnTheRing() throws Exception {
    ReplyMailbox.setWaitBudgetNanos(TimeUnit.MILLISECONDS.toNanos(50));
    byte[] response = "pong, late".getBytes();
    try (HandWrittenServer server = new HandWrittenServer(true, (s, headers) -> {
      long at = (long) headers.reserved() * MailboxLayout.SIZE + MailboxLayout.STATE_OFFSET;
      // A slow server: by the time it answers, the caller gave the page up (PROTOCOL.md §7.5).
      assertTrue(Eventually.holds(() -> s.clientPool.get(ValueLayout.JAVA_INT, at)
          == MailboxLayout.STATE_ABANDONED, 30), "the caller gave the page up");
      s.answerOnRing(headers.streamId(), response);
      s.storeState(headers.reserved(), MailboxLayout.STATE_ON_RING);
    })) {
      ManagedChannel channel = channel(server.port);
      try {
        assertArrayEquals(response, blockingCall(channel, 30_000));
        assertNamedMailbox(server);
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void deadlineEndsTheWaitWhenTheServerNeverAnswers() throws Exception {
    try (HandWrittenServer server = new HandWrittenServer(true, (s, headers) -> { })) {
      ManagedChannel channel = channel(server.port);
      try {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> blockingCall(channel, 300));
        assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
        assertNamedMailbox(server);
        // The server heard of it, and the connection still serves the next call's request.
        assertTrue(Eventually.holds(() -> server.frames.stream()
            .anyMatch(f -> f.type() == FrameLayout.TYPE_RST_STREAM), 30), "RST_STREAM sent");
        assertThrows(StatusRuntimeException.class, () -> blockingCall(channel, 300));
        assertEquals(2, server.frames.stream()
            .filter(f -> f.type() == FrameLayout.TYPE_REQUEST_HEADERS).count());
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void interruptEndsTheWaitAsGrpcsBlockingStubDoes() throws Exception {
    // A futex sleep does not see an interrupt: the caller notices it when its budget ends.
    ReplyMailbox.setWaitBudgetNanos(ReplyMailbox.DEFAULT_WAIT_BUDGET_NANOS);
    CountDownLatch requested = new CountDownLatch(1);
    try (HandWrittenServer server = new HandWrittenServer(true,
        (s, headers) -> requested.countDown())) {
      ManagedChannel channel = channel(server.port);
      try {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        AtomicReference<Boolean> stillInterrupted = new AtomicReference<>();
        Thread caller = new Thread(() -> {
          try {
            blockingCall(channel, 60_000);
          } catch (Throwable t) {
            failure.set(t);
          }
          stillInterrupted.set(Thread.currentThread().isInterrupted());
        });
        caller.start();
        assertTrue(requested.await(30, TimeUnit.SECONDS));
        caller.interrupt();
        caller.join(TimeUnit.SECONDS.toMillis(30));
        assertTrue(!caller.isAlive(), "the interrupted caller returned");
        StatusRuntimeException e = (StatusRuntimeException) failure.get();
        assertEquals(Status.Code.CANCELLED, e.getStatus().getCode());
        assertTrue(stillInterrupted.get(), "the caller's interrupt flag is kept");
        assertNamedMailbox(server);
        assertTrue(Eventually.holds(() -> server.frames.stream()
            .anyMatch(f -> f.type() == FrameLayout.TYPE_RST_STREAM), 30), "RST_STREAM sent");
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void cancellingTheCallersContextEndsTheWait() throws Exception {
    CountDownLatch requested = new CountDownLatch(1);
    try (HandWrittenServer server = new HandWrittenServer(true,
        (s, headers) -> requested.countDown())) {
      ManagedChannel channel = channel(server.port);
      try {
        Context.CancellableContext context = Context.current().withCancellation();
        CompletableFuture<Void> call = new CompletableFuture<>();
        Thread caller = new Thread(() -> {
          try {
            context.run(() -> blockingCall(channel, 60_000));
            call.complete(null);
          } catch (Throwable t) {
            call.completeExceptionally(t);
          }
        });
        caller.start();
        assertTrue(requested.await(30, TimeUnit.SECONDS));
        context.cancel(null);
        ExecutionException e = assertThrows(ExecutionException.class,
            () -> call.get(30, TimeUnit.SECONDS));
        assertEquals(Status.Code.CANCELLED, Status.fromThrowable(e.getCause()).getCode());
        assertNamedMailbox(server);
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void serverDyingWhileTheCallerWaitsFailsTheCall() throws Exception {
    try (HandWrittenServer server = new HandWrittenServer(true, (s, headers) -> {
      throw new java.io.IOException("the server goes away"); // closes socket and mapping
    })) {
      ManagedChannel channel = channel(server.port);
      try {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> blockingCall(channel, 60_000));
        assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
        assertNamedMailbox(server);
      } finally {
        shutdown(channel);
      }
      assertThrows(ExecutionException.class, () -> server.done.get(30, TimeUnit.SECONDS));
    }
  }

  /** A hostile server's mailbox: the call fails with INTERNAL, the process carries on. */
  private static void hostile(Script script) throws Exception {
    try (HandWrittenServer server = new HandWrittenServer(true, script)) {
      ManagedChannel channel = channel(server.port);
      try {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> blockingCall(channel, 60_000));
        assertEquals(Status.Code.INTERNAL, e.getStatus().getCode(), e.getStatus().toString());
        assertTrue(e.getStatus().getDescription().contains("violated the protocol"),
            e.getStatus().toString());
        assertNamedMailbox(server);
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void mailboxRecordOfAnotherStreamClosesTheConnection() throws Exception {
    hostile((s, headers) -> {
      byte[] records = answerRecords(headers.streamId() + 2, REQUEST);
      s.fillMailbox(headers.reserved(), records, records.length, MailboxLayout.STATE_FILLED);
    });
  }

  @Test
  void mailboxLengthBeyondThePageClosesTheConnection() throws Exception {
    hostile((s, headers) -> {
      byte[] records = answerRecords(headers.streamId(), REQUEST);
      s.fillMailbox(headers.reserved(), records, MailboxLayout.RECORDS_CAPACITY + 1,
          MailboxLayout.STATE_FILLED);
    });
  }

  @Test
  void mailboxRecordLengthBeyondTheRecordsClosesTheConnection() throws Exception {
    hostile((s, headers) -> {
      byte[] records = answerRecords(headers.streamId(), REQUEST);
      ByteBuffer.wrap(records).order(ByteOrder.LITTLE_ENDIAN).putInt(0, records.length + 1);
      s.fillMailbox(headers.reserved(), records, records.length, MailboxLayout.STATE_FILLED);
    });
  }

  @Test
  void mailboxAnswerWithoutTrailersClosesTheConnection() throws Exception {
    hostile((s, headers) -> {
      byte[] records = record(FrameLayout.TYPE_RESPONSE_HEADERS, 0, headers.streamId(),
          RawRecords.metadata(new Metadata()));
      s.fillMailbox(headers.reserved(), records, records.length, MailboxLayout.STATE_FILLED);
    });
  }

  @Test
  void mailboxWithAConnectionFrameClosesTheConnection() throws Exception {
    hostile((s, headers) -> {
      byte[] records = record(FrameLayout.TYPE_PING, 0, headers.streamId(), new byte[8]);
      s.fillMailbox(headers.reserved(), records, records.length, MailboxLayout.STATE_FILLED);
    });
  }

  @Test
  void releaseOfAMailboxPageClosesTheConnection() throws Exception {
    hostile((s, headers) -> {
      // A mailbox page was never a DATA_BLOCK extent: returning it would let the pool lend it
      // twice.
      RawRecords.write(s.tx, FrameLayout.TYPE_RELEASE, 0, 0, ByteBuffer.allocate(16)
          .order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(0)
          .putLong((long) headers.reserved() * MailboxLayout.SIZE).array());
      s.connection.socket().sendWake();
    });
  }

  @Test
  void serverRewritingTheWordCannotHoldTheCallerPastItsDeadline() throws Exception {
    try (HandWrittenServer server = new HandWrittenServer(true, (s, headers) -> {
      long at = (long) headers.reserved() * MailboxLayout.SIZE + MailboxLayout.STATE_OFFSET;
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
      while (System.nanoTime() < until) { // undoes every ABANDONED the client writes
        s.clientPool.set(ValueLayout.JAVA_INT, at, MailboxLayout.STATE_WAITING);
        Thread.onSpinWait();
      }
    })) {
      ManagedChannel channel = channel(server.port);
      try {
        long start = System.nanoTime();
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> blockingCall(channel, 300));
        assertTrue(e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED
            || e.getStatus().getCode() == Status.Code.INTERNAL, e.getStatus().toString());
        // Not the 60 s wait budget this class sets: the deadline ended the wait.
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(30),
            "returned after " + (System.nanoTime() - start) / 1_000_000 + " ms");
        assertNamedMailbox(server);
      } finally {
        shutdown(channel);
      }
      server.done.get(30, TimeUnit.SECONDS);
    }
  }

  @Test
  void mailboxStateNoStateHasClosesTheConnection() throws Exception {
    hostile((s, headers) -> s.storeState(headers.reserved(), 77));
  }

  // ---- our own server ---------------------------------------------------------------------------

  private static final MethodDescriptor<byte[], byte[]> ECHO = MethodDescriptor
      .<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
      .setFullMethodName("grpcshm.test.Mailbox/Echo")
      .setRequestMarshaller(Hardening.BYTES).setResponseMarshaller(Hardening.BYTES).build();
  private static final Metadata.Key<String> BIG_TRAILER =
      Metadata.Key.of("big-trailer", Metadata.ASCII_STRING_MARSHALLER);

  /**
   * Echoes the request; a request starting with 's' sleeps 300 ms first (a call that outlives its
   * deadline), one starting with 'e' fails with a status whose trailers alone overflow a page.
   */
  private static ServerServiceDefinition echo() {
    return ServerServiceDefinition.builder("grpcshm.test.Mailbox")
        .addMethod(ECHO, ServerCalls.asyncUnaryCall((request, response) -> {
          if (request.length > 0 && request[0] == 's') {
            try {
              Thread.sleep(300);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          }
          if (request.length > 0 && request[0] == 'e') {
            Metadata trailers = new Metadata();
            trailers.put(BIG_TRAILER, "x".repeat(6000));
            response.onError(Status.FAILED_PRECONDITION.withDescription("as asked")
                .asRuntimeException(trailers));
            return;
          }
          response.onNext(request);
          response.onCompleted();
        })).build();
  }

  @Test
  void answersOfEverySizeArriveWholeThroughMailboxOrRing() throws Exception {
    ReplyMailbox.setWaitBudgetNanos(ReplyMailbox.DEFAULT_WAIT_BUDGET_NANOS);
    Server server = ShmServerBuilder.forPort(0).addService(echo()).build().start();
    ManagedChannel channel = channel(server.getPort());
    try {
      // In a page, just fitting, just not, inline on the ring, in the pool, in a segment.
      for (int size : new int[] {0, 1, 100, 3900, 4050, 5000, 16_000, 100_000, 3 << 20}) {
        byte[] request = new byte[size];
        java.util.concurrent.ThreadLocalRandom.current().nextBytes(request);
        if (size > 0) {
          request[0] = 'x';
        }
        byte[] got = ClientCalls.blockingUnaryCall(channel, ECHO,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), request);
        assertArrayEquals(request, got, "echo of " + size + " bytes");
      }
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> ClientCalls.blockingUnaryCall(channel, ECHO,
              CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), "e".getBytes()));
      assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
      assertEquals("as asked", e.getStatus().getDescription());
      assertEquals(6000, e.getTrailers().get(BIG_TRAILER).length());
    } finally {
      shutdown(channel);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void slowAnswerTakesTheRingOnceTheCallerGaveThePageUp() throws Exception {
    ReplyMailbox.setWaitBudgetNanos(ReplyMailbox.DEFAULT_WAIT_BUDGET_NANOS);
    Server server = ShmServerBuilder.forPort(0).addService(echo()).build().start();
    ManagedChannel channel = channel(server.getPort());
    try {
      long opened = ReplyMailboxes.opened();
      byte[] slow = "slow request".getBytes();
      for (int i = 0; i < 3; i++) { // 300 ms each, well past the 20 ms budget
        assertArrayEquals(slow, ClientCalls.blockingUnaryCall(channel, ECHO,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), slow));
      }
      assertEquals(opened + 3, ReplyMailboxes.opened(), "each slow call named a page");
      assertArrayEquals(REQUEST, ClientCalls.blockingUnaryCall(channel, ECHO,
          CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), REQUEST));
    } finally {
      shutdown(channel);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void callsThatOutliveTheirDeadlineGiveTheirPagesBackOnceTheServerIsDone() throws Exception {
    ReplyMailbox.setWaitBudgetNanos(ReplyMailbox.DEFAULT_WAIT_BUDGET_NANOS);
    Server server = ShmServerBuilder.forPort(0).addService(echo()).build().start();
    ManagedChannel channel = channel(server.getPort());
    try {
      assertArrayEquals(REQUEST, ClientCalls.blockingUnaryCall(channel, ECHO,
          CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), REQUEST));
      long before = ReplyMailboxes.opened();
      long lentBefore = ReplyMailboxes.lent(); // earlier tests' closed connections keep theirs
      // More than a quarantine holds: each page waits for the server's RELEASED, then returns.
      int timedOut = ReplyMailboxes.MAX_QUARANTINED + 16;
      for (int i = 0; i < timedOut; i++) {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> ClientCalls.blockingUnaryCall(channel, ECHO,
                CallOptions.DEFAULT.withDeadlineAfter(5, TimeUnit.MILLISECONDS),
                "sleep".getBytes()));
        assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
      }
      // Once the server ended those calls, every page is free again: calls keep using pages.
      assertTrue(Eventually.holds(() -> {
        long opened = ReplyMailboxes.opened();
        byte[] got = ClientCalls.blockingUnaryCall(channel, ECHO,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), REQUEST);
        return Arrays.equals(REQUEST, got) && ReplyMailboxes.opened() == opened + 1;
      }, 60), "calls use mailboxes again");
      assertTrue(ReplyMailboxes.opened() > before + timedOut / 2,
          "the calls that timed out had mailboxes too");
      // And every page came back, the quarantined ones included, once the server was done.
      assertTrue(Eventually.holds(() -> {
        ClientCalls.blockingUnaryCall(channel, ECHO,
            CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), REQUEST);
        return ReplyMailboxes.lent() == lentBefore;
      }, 60), "pages still lent: " + (ReplyMailboxes.lent() - lentBefore));
    } finally {
      shutdown(channel);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
