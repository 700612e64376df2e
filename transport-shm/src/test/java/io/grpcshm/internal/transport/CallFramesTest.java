package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.hardening.Hardening;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.RegionLayout;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingProducer;
import java.lang.foreign.ValueLayout;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * What a client call puts on the ring. A call with one request message sends its headers with
 * that message (grpc does not flush them, as over HTTP/2): REQUEST_HEADERS, then the message in
 * one DATA_INLINE carrying END_STREAM. A streaming call's headers go out at once. (The server's
 * side: {@code io.grpcshm.hardening.ResponseFramesTest}.)
 */
class CallFramesTest {
  private record Frame(int type, int flags, int streamId, byte[] body) {}

  private static final byte[] REQUEST = "ping-0123456789".getBytes();

  /** A hand-written server: records the client's frames and answers a unary call. */
  private static final class RecordingServer implements AutoCloseable {
    final int port;
    final UnixSeqpacketSocket listen;
    final List<Frame> frames = new CopyOnWriteArrayList<>();
    final CompletableFuture<Void> done;

    RecordingServer(Predicate<List<Frame>> answerWhen, byte[] response) throws Exception {
      try (ServerSocket free = new ServerSocket(0)) {
        port = free.getLocalPort(); // only a number for the rendezvous name
      }
      listen = UnixSeqpacketSocket.listen(ShmAddress.defaultRendezvous(port), 4);
      done = CompletableFuture.runAsync(() -> serve(answerWhen, response));
    }

    private void serve(Predicate<List<Frame>> answerWhen, byte[] response) {
      try (UnixSeqpacketSocket accepted = listen.accept()) {
        Handshakes.Established e = Handshakes.server(accepted, ShmTransportConfig.defaults());
        try {
          RegionLayout layout = e.layout();
          RingConsumer rx = new RingConsumer(layout.ringHeader(e.region(), true),
              layout.ringData(e.region(), true), layout.ringCapacity());
          RingProducer tx = new RingProducer(layout.ringHeader(e.region(), false),
              layout.ringData(e.region(), false), layout.ringCapacity());
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
          while (!answerWhen.test(frames) && System.nanoTime() < deadline) {
            if (rx.poll((d, at, length) -> frames.add(new Frame(
                d.get(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET) & 0xff,
                d.get(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET) & 0xff,
                d.get(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET),
                RawRecords.bytes(d, at + FrameLayout.HEADER_LENGTH,
                    length - FrameLayout.HEADER_LENGTH))),
                16) == 0) {
              Thread.sleep(1);
            }
          }
          int stream = frames.isEmpty() ? 1 : frames.get(0).streamId();
          RawRecords.write(tx, FrameLayout.TYPE_RESPONSE_HEADERS, 0, stream,
              RawRecords.metadata(new Metadata()));
          RawRecords.write(tx, FrameLayout.TYPE_DATA_INLINE, 0, stream,
              RawRecords.grpcMessage(response));
          Metadata trailers = new Metadata();
          trailers.put(Metadata.Key.of("grpc-status", Metadata.ASCII_STRING_MARSHALLER), "0");
          RawRecords.write(tx, FrameLayout.TYPE_TRAILERS, 0, stream,
              RawRecords.metadata(trailers));
          e.socket().sendWake();
          RawRecords.awaitHangUp(e.socket());
        } finally {
          e.socket().close();
          e.mapping().close();
        }
      } catch (Exception ex) {
        throw new IllegalStateException(ex);
      }
    }

    @Override
    public void close() {
      listen.close();
    }
  }


  private static boolean hasEnd(List<Frame> frames) {
    return frames.stream().anyMatch(f -> (f.flags() & FrameLayout.FLAG_END_STREAM) != 0);
  }

  private static ManagedChannel channel(int port) {
    return ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
  }

  @Test
  void unaryRequestIsHeadersThenOneDataRecordWithEndOfStream() throws Exception {
    byte[] response = "pong".getBytes();
    try (RecordingServer peer = new RecordingServer(CallFramesTest::hasEnd, response)) {
      ManagedChannel channel = channel(peer.port);
      try {
        byte[] got = ClientCalls.blockingUnaryCall(channel, Hardening.UNARY,
            CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), REQUEST);
        assertArrayEquals(response, got);
        List<Frame> calls = new ArrayList<>(peer.frames);
        calls.removeIf(f -> f.streamId() == 0); // connection-level frames (PING, WINDOW_UPDATE)
        assertEquals(2, calls.size(), "frames of the call: " + calls);
        assertEquals(FrameLayout.TYPE_REQUEST_HEADERS, calls.get(0).type());
        Frame data = calls.get(1);
        assertEquals(FrameLayout.TYPE_DATA_INLINE, data.type());
        assertEquals(FrameLayout.FLAG_END_STREAM, data.flags() & FrameLayout.FLAG_END_STREAM);
        assertArrayEquals(RawRecords.grpcMessage(REQUEST), data.body());
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      peer.done.get(20, TimeUnit.SECONDS);
    }
  }

  @Test
  void streamingCallSendsItsHeadersBeforeAnyMessage() throws Exception {
    try (RecordingServer peer = new RecordingServer(
        frames -> frames.stream().anyMatch(f -> f.type() == FrameLayout.TYPE_REQUEST_HEADERS),
        new byte[0])) {
      ManagedChannel channel = channel(peer.port);
      try {
        ClientCall<byte[], byte[]> call = channel.newCall(Hardening.BIDI,
            CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS));
        CompletableFuture<Status> closed = new CompletableFuture<>();
        call.start(new ClientCall.Listener<>() {
          @Override
          public void onClose(Status status, Metadata trailers) {
            closed.complete(status);
          }
        }, new Metadata());
        call.request(1);
        // No message, no half-close: the peer answers only once it saw the headers.
        assertTrue(closed.get(20, TimeUnit.SECONDS).isOk(), "the call completed");
        assertEquals(FrameLayout.TYPE_REQUEST_HEADERS, peer.frames.get(0).type());
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      peer.done.get(20, TimeUnit.SECONDS);
    }
  }
}
