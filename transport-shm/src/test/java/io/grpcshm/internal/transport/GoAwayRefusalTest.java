package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.FrameCodec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.RegionLayout;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingProducer;
import java.lang.foreign.ValueLayout;
import java.net.ServerSocket;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A server that refuses the only stream of a connection with GOAWAY (the stream raced with the
 * server's shutdown) must fail that call over to a retry at once: the last stream leaving closes
 * the connection, and grpc refuses a transport reported terminated before it was reported shut
 * down. That ordering once threw on the event loop and the call hung until its deadline.
 */
class GoAwayRefusalTest {
  /** Never served: the hand-written peer refuses the only call with GOAWAY. */
  private static final MethodDescriptor<byte[], byte[]> UNARY = io.grpcshm.hardening.Hardening.UNARY;

  @Test
  void callRefusedByGoAwayFailsFastInsteadOfHanging() throws Exception {
    int port;
    try (ServerSocket free = new ServerSocket(0)) {
      port = free.getLocalPort(); // only a number for the rendezvous name; nothing listens on TCP
    }
    UnixSeqpacketSocket listen = UnixSeqpacketSocket.listen(ShmAddress.defaultRendezvous(port), 4);
    AtomicInteger refusedStream = new AtomicInteger();
    CompletableFuture<Void> peer = CompletableFuture.runAsync(() -> {
      try (UnixSeqpacketSocket accepted = listen.accept()) {
        // One connection only: later connects (the retry) find nobody listening.
        listen.close();
        Handshakes.Established e = Handshakes.server(accepted, ShmTransportConfig.defaults());
        try {
          RegionLayout layout = e.layout();
          RingConsumer rx = new RingConsumer(layout.ringHeader(e.region(), true),
              layout.ringData(e.region(), true), layout.ringCapacity());
          RingProducer tx = new RingProducer(layout.ringHeader(e.region(), false),
              layout.ringData(e.region(), false), layout.ringCapacity());
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
          while (refusedStream.get() == 0 && System.nanoTime() < deadline) {
            int n = rx.poll((d, at, length) -> {
              if ((d.get(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET) & 0xff)
                  == FrameLayout.TYPE_REQUEST_HEADERS) {
                refusedStream.set(
                    d.get(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET));
              }
            }, 16);
            if (n == 0) {
              Thread.sleep(1);
            }
          }
          // GOAWAY with last stream 0: the client's stream was never seen.
          byte[] body = FrameCodec.encodeGoAway(0,
              Status.UNAVAILABLE.withDescription("server is shutting down"));
          RawRecords.write(tx, FrameLayout.TYPE_GOAWAY, 0, 0, body);
          e.socket().sendWake();
          // Stay connected: the client must close by itself once the refused stream is gone.
          RawRecords.awaitHangUp(e.socket());
        } finally {
          e.socket().close();
          e.mapping().close();
        }
      } catch (Exception ex) {
        throw new IllegalStateException(ex);
      }
    });
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    try {
      long t0 = System.nanoTime();
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> ClientCalls.blockingUnaryCall(channel, UNARY,
              CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[] {1}));
      // Refused, retried transparently on a new connection, which finds nobody listening.
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
      assertTrue(refusedStream.get() > 0, "the request reached the peer");
      assertTrue(TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0) < 10,
          "failed over promptly, not at the deadline: " + e);
      peer.get(20, TimeUnit.SECONDS); // the client closed the refused connection itself
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      listen.close();
    }
  }
}
