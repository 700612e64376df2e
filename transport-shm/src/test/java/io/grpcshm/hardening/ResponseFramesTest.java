package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.Server;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.internal.frame.FrameLayout;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What a unary call's answer puts on the ring: grpc does not flush the response headers of a
 * call with one response message, so they leave with it: RESPONSE_HEADERS, the whole message
 * (length prefix and bytes) in one DATA_INLINE, TRAILERS. (The client's side:
 * {@code io.grpcshm.internal.transport.CallFramesTest}.)
 */
class ResponseFramesTest {
  private Server server;

  @BeforeEach
  void start() throws Exception {
    server = ShmServerBuilder.forPort(0).addService(Hardening.service(new Hardening.Stats()))
        .build().start();
  }

  @AfterEach
  void stop() throws Exception {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  @Test
  void unaryAnswerIsHeadersOneDataRecordAndTrailers() throws Exception {
    byte[] request = Hardening.message(1, 100);
    try (HostilePeer peer = new HostilePeer(server.getPort())) {
      peer.startCall(1, Hardening.UNARY, java.util.Map.of());
      peer.sendMessage(1, request, true);
      List<HostilePeer.Frame> frames = peer.readUntil(
          f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 1), 20_000);
      frames.removeIf(f -> f.streamId() != 1);
      assertEquals(3, frames.size(), "frames of the call: " + frames);
      assertEquals(FrameLayout.TYPE_RESPONSE_HEADERS, frames.get(0).type());
      assertEquals(FrameLayout.TYPE_DATA_INLINE, frames.get(1).type());
      assertArrayEquals(HostilePeer.grpcFrame(request), frames.get(1).body());
      assertEquals(FrameLayout.TYPE_TRAILERS, frames.get(2).type());
    }
  }
}
