package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.ClientCalls;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.RegionLayout;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.ring.RingDescriptor;
import io.grpcshm.internal.ring.RingProducer;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A peer that passes the handshake and then writes garbage into the ring: only its own
 * connection dies, the server keeps serving everyone else.
 */
class HostilePeerTest {
  enum Attack {
    UNKNOWN_FRAME_TYPE,
    BLOCK_OUTSIDE_POOL,
    BLOCK_IN_UNKNOWN_SEGMENT,
    RELEASE_NEVER_LENT,
    LYING_METADATA_COUNT,
    STREAM_ID_REUSE,
    LYING_RING_TAIL,
    TRUNCATED_BODY
  }

  private Server server;
  private ManagedChannel honest;

  @BeforeEach
  void start() throws Exception {
    server = ShmServerBuilder.forPort(0).addService(EchoService.definition()).build().start();
    honest = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    assertArrayEquals(new byte[] {1}, echo(new byte[] {1}));
  }

  @AfterEach
  void stop() throws Exception {
    honest.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private byte[] echo(byte[] payload) {
    return ClientCalls.blockingUnaryCall(honest, EchoService.UNARY, CallOptions.DEFAULT, payload);
  }

  @ParameterizedTest
  @EnumSource(Attack.class)
  void onlyTheHostileConnectionDies(Attack attack) throws Exception {
    Handshakes.Established hostile = Handshakes.client(
        ShmAddress.defaultRendezvous(server.getPort()), ShmTransportConfig.defaults());
    try {
      RegionLayout layout = hostile.layout();
      MemorySegment ringHeader = layout.ringHeader(hostile.region(), true);
      RingProducer ring = new RingProducer(ringHeader, layout.ringData(hostile.region(), true),
          layout.ringCapacity());
      wake = hostile.socket()::sendWake;
      switch (attack) {
        case UNKNOWN_FRAME_TYPE -> write(ring, 200, 0, 1, new byte[4]);
        case BLOCK_OUTSIDE_POOL -> write(ring, FrameLayout.TYPE_DATA_BLOCK, 0, 1,
            le(16).putInt(0).putInt(4096).putLong(layout.poolSize()).array());
        case BLOCK_IN_UNKNOWN_SEGMENT -> write(ring, FrameLayout.TYPE_DATA_BLOCK, 0, 1,
            le(16).putInt(77).putInt(10).putLong(0).array());
        case RELEASE_NEVER_LENT -> write(ring, FrameLayout.TYPE_RELEASE, 0, 0,
            le(16).putInt(0).putInt(0).putLong(8192).array());
        case LYING_METADATA_COUNT -> write(ring, FrameLayout.TYPE_REQUEST_HEADERS, 0, 1,
            le(12).putShort((short) 2).put((byte) '/').put((byte) 'x').putShort((short) 0)
                .putInt(Integer.MAX_VALUE).array());
        case STREAM_ID_REUSE -> {
          byte[] headers = le(16).putShort((short) 2).put((byte) '/').put((byte) 'x')
              .putShort((short) 0).putInt(0).array();
          write(ring, FrameLayout.TYPE_REQUEST_HEADERS, 0, 5, headers);
          write(ring, FrameLayout.TYPE_REQUEST_HEADERS, 0, 3, headers);
        }
        case LYING_RING_TAIL -> {
          ringHeader.set(ValueLayout.JAVA_LONG, RingDescriptor.TAIL_OFFSET,
              3L * layout.ringCapacity());
          hostile.socket().sendWake();
        }
        case TRUNCATED_BODY -> write(ring, FrameLayout.TYPE_WINDOW_UPDATE, 0, 1, new byte[1]);
      }
      // The server must hang up on us (our socket reads end-of-file) within a second.
      byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
      int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
      long start = System.nanoTime();
      int n = hostile.socket().receive(buf, fds, 2000);
      assertEquals(-1, n, "server closed the hostile connection");
      assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start) < 1000);
      // Everyone else is unaffected.
      byte[] payload = new byte[256 * 1024];
      new java.util.Random(7).nextBytes(payload);
      assertArrayEquals(payload, echo(payload));
    } finally {
      hostile.socket().close();
      hostile.mapping().close();
    }
  }

  private static ByteBuffer le(int size) {
    return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static Runnable wake;

  private static void write(RingProducer ring, int type, int flags, int streamId, byte[] body) {
    int length = FrameLayout.HEADER_LENGTH + body.length;
    long at = ring.claim(length);
    MemorySegment d = ring.data();
    d.set(ValueLayout.JAVA_INT, at, length);
    d.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    d.set(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET, (byte) flags);
    d.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET, streamId);
    MemorySegment.copy(body, 0, d, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH,
        body.length);
    ring.commit();
    ring.wakeConsumer(wake);
  }
}
