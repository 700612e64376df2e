package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Graceful shutdown with calls in flight, restart on the same port while old clients reconnect,
 * slow and stalled consumers (bounded lead, deadlines still fire).
 */
class LifecycleTest {
  private static final MethodDescriptor<byte[], byte[]> WHO = MethodDescriptor
      .<byte[], byte[]>newBuilder().setType(MethodDescriptor.MethodType.UNARY)
      .setFullMethodName("grpcshm.hardening.Who/Name")
      .setRequestMarshaller(Hardening.BYTES).setResponseMarshaller(Hardening.BYTES).build();

  private static Server server(int port, String name, Hardening.Stats stats) throws Exception {
    return ShmServerBuilder.forPort(port).maxInboundMessageSize(64 << 20)
        .addService(Hardening.service(stats))
        .addService(ServerServiceDefinition.builder("grpcshm.hardening.Who")
            .addMethod(WHO, ServerCalls.asyncUnaryCall((req, obs) -> {
              obs.onNext(name.getBytes(StandardCharsets.UTF_8));
              obs.onCompleted();
            })).build())
        .build().start();
  }

  private static ManagedChannel channel(int port) {
    return ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .maxInboundMessageSize(64 << 20).transportMode(TransportMode.SHM_ONLY).build();
  }

  private static String who(ManagedChannel ch, boolean waitForReady) {
    CallOptions o = CallOptions.DEFAULT.withDeadlineAfter(10, TimeUnit.SECONDS);
    return new String(ClientCalls.blockingUnaryCall(ch, WHO,
        waitForReady ? o.withWaitForReady() : o, new byte[0]), StandardCharsets.UTF_8);
  }

  @Test
  void gracefulShutdownFinishesCallsInFlight() throws Exception {
    Hardening.Stats stats = new Hardening.Stats();
    Server server = server(0, "s", stats);
    ManagedChannel ch = channel(server.getPort());
    try {
      Calls.echo(ch, 1000);
      // A slowly read server stream, an upload of 64 MiB, a bidi with one echo outstanding.
      SlowReader slow = new SlowReader(ch.newCall(Hardening.SERVER_STREAM, CallOptions.DEFAULT),
          5);
      slow.start(Hardening.streamRequest(100, 64 << 10));
      Calls.Upload upload = Calls.Upload.start(ch, CallOptions.DEFAULT, 1 << 20, 64L << 20);
      Calls.Watched bidi = Calls.start(ch, Hardening.BIDI, CallOptions.DEFAULT,
          Hardening.message(0, 300_000), false);
      assertTrue(bidi.firstMessage.await(10, TimeUnit.SECONDS));
      Thread.sleep(50);
      server.shutdown();
      bidi.call.sendMessage(Hardening.message(1, 300_000));
      bidi.call.halfClose();
      assertTrue(slow.closed.await(20, TimeUnit.SECONDS), "slow stream finished");
      assertEquals(Status.Code.OK, slow.status.get().getCode(), slow.status.get().toString());
      assertEquals(100, slow.received.get(), "every message of the slow stream");
      assertTrue(upload.closed.await(20, TimeUnit.SECONDS), "upload finished");
      assertEquals(Status.Code.OK, upload.status.get().getCode(), upload.toString());
      assertTrue(bidi.closed.await(20, TimeUnit.SECONDS), "bidi finished");
      assertEquals(Status.Code.OK, bidi.status.get().getCode(), bidi.toString());
      assertEquals(2, bidi.received.get(), "both echoes, including the one sent after shutdown");
      assertEquals(0, slow.corrupt.get() + upload.corrupt.get() + bidi.corrupt.get());
      assertTrue(server.awaitTermination(10, TimeUnit.SECONDS), "server terminated");
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> Calls.echo(ch, 10));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void restartOnTheSamePortsReconnectsOldClientsWithoutCrossing() throws Exception {
    Server x = server(0, "x1", new Hardening.Stats());
    Server y = server(0, "y1", new Hardening.Stats());
    int px = x.getPort();
    int py = y.getPort();
    ManagedChannel cx = channel(px);
    ManagedChannel cy = channel(py);
    try {
      assertEquals("x1", who(cx, false));
      assertEquals("y1", who(cy, false));
      for (int round = 2; round <= 4; round++) {
        x.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        y.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        // While nobody listens: fail fast, do not hang.
        long t0 = System.nanoTime();
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> who(cx, false));
        assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 5000);
        // Restart in the opposite order, on the same ports.
        y = server(py, "y" + round, new Hardening.Stats());
        x = server(px, "x" + round, new Hardening.Stats());
        assertEquals("x" + round, who(cx, true), "round " + round);
        assertEquals("y" + round, who(cy, true), "round " + round);
        Calls.echo(cx, 2 << 20);
        Calls.echo(cy, 2 << 20);
      }
    } finally {
      cx.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      cy.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      x.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      y.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** Reads one message per {@code delayMillis}, verifying order; tracks how far the server led. */
  static final class SlowReader extends ClientCall.Listener<byte[]> {
    final ClientCall<byte[], byte[]> call;
    final int delayMillis;
    final AtomicLong received = new AtomicLong();
    final AtomicLong corrupt = new AtomicLong();
    final CountDownLatch closed = new CountDownLatch(1);
    final AtomicReference<Status> status = new AtomicReference<>();
    final java.util.concurrent.ScheduledExecutorService timer =
        java.util.concurrent.Executors.newSingleThreadScheduledExecutor();

    SlowReader(ClientCall<byte[], byte[]> call, int delayMillis) {
      this.call = call;
      this.delayMillis = delayMillis;
    }

    void start(byte[] request) {
      call.start(this, new Metadata());
      call.request(1);
      call.sendMessage(request);
      call.halfClose();
    }

    @Override
    public void onMessage(byte[] m) {
      try {
        if (Hardening.verify(m) != received.get()) {
          corrupt.incrementAndGet();
        }
      } catch (IllegalStateException e) {
        corrupt.incrementAndGet();
      }
      received.incrementAndGet();
      if (delayMillis > 0) {
        timer.schedule(() -> call.request(1), delayMillis, TimeUnit.MILLISECONDS);
      }
    }

    @Override
    public void onClose(Status s, Metadata trailers) {
      status.set(s);
      closed.countDown();
      timer.shutdown();
    }
  }

  @Test
  void slowConsumerIsPacedAndStalledConsumerHitsItsDeadline() throws Exception {
    Hardening.Stats stats = new Hardening.Stats();
    Server server = server(0, "s", stats);
    ManagedChannel ch = channel(server.getPort());
    try {
      // Slow: 150 x 256 KiB read one per 10 ms; the server may lead by about one window.
      SlowReader slow = new SlowReader(ch.newCall(Hardening.SERVER_STREAM, CallOptions.DEFAULT),
          10);
      long outBefore = stats.messagesOut.get();
      slow.start(Hardening.streamRequest(150, 256 << 10));
      long maxLead = 0;
      while (slow.closed.getCount() > 0) {
        maxLead = Math.max(maxLead, stats.messagesOut.get() - outBefore - slow.received.get());
        Thread.sleep(2);
      }
      assertEquals(Status.Code.OK, slow.status.get().getCode(), slow.status.get().toString());
      assertEquals(150, slow.received.get());
      assertEquals(0, slow.corrupt.get(), "in order and intact");
      // 4 MiB stream window / 256 KiB = 16 messages, plus what grpc buffers on either side.
      assertTrue(maxLead <= 24, "server ran " + maxLead + " messages ahead of a slow reader");

      // Stalled: reads one message and never asks for more; its deadline still fires.
      outBefore = stats.messagesOut.get();
      int cancelsBefore = stats.cancellations.size();
      // Timed from before the deadline is set, so it can never read as early; that it fires
      // at all (not how promptly on a busy machine) is bounded by the wait.
      long t0 = System.nanoTime();
      SlowReader stalled = new SlowReader(ch.newCall(Hardening.SERVER_STREAM,
          CallOptions.DEFAULT.withDeadlineAfter(1500, TimeUnit.MILLISECONDS)), -1);
      stalled.start(Hardening.streamRequest(-1, 64 << 10));
      assertTrue(stalled.closed.await(30, TimeUnit.SECONDS), "stalled call ended");
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      assertEquals(Status.Code.DEADLINE_EXCEEDED, stalled.status.get().getCode());
      assertTrue(ms >= 1500, "deadline fired after " + ms + " ms, before it was due");
      long sent = stats.messagesOut.get() - outBefore;
      assertTrue(sent <= 4 * 16 + 16, "server sent " + sent + " x 64 KiB to a stalled reader");
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (stats.cancellations.size() == cancelsBefore && System.nanoTime() < until) {
        Thread.sleep(5);
      }
      assertEquals(cancelsBefore + 1, stats.cancellations.size(), "server call cancelled too");
      Calls.echo(ch, 1 << 20); // connection healthy
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
