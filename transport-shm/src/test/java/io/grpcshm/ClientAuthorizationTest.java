package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpcshm.internal.fallback.RoutingClientTransportFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Server authorization on the client side: the client checks the server's peer credentials, a
 * refused server means TCP (logged once), and a channel that asked for TLS never silently uses
 * shared memory.
 */
class ClientAuthorizationTest {
  private static final int NOBODY = 65534;
  private Server server;
  private final List<ManagedChannel> channels = new ArrayList<>();

  @BeforeEach
  void startServer() throws Exception {
    server = ShmServerBuilder.forPort(0).addService(EchoService.definition()).build().start();
  }

  @AfterEach
  void stop() throws InterruptedException {
    for (ManagedChannel c : channels) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  private ManagedChannel track(ManagedChannel c) {
    channels.add(c);
    return c;
  }

  private static byte[] call(ManagedChannel ch, byte b) {
    return ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
        CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[] {b});
  }

  @Test
  void aRefusedServerMeansTcpLoggedOnce() throws Exception {
    Logger logger = Logger.getLogger(RoutingClientTransportFactory.class.getName());
    List<LogRecord> warnings = new CopyOnWriteArrayList<>();
    Handler handler = new Handler() {
      @Override
      public void publish(LogRecord r) {
        if (r.getLevel().intValue() >= Level.WARNING.intValue()) {
          warnings.add(r);
        }
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    logger.addHandler(handler);
    try {
      EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
      ManagedChannel ch = track(ShmChannelBuilder.forAddress("127.0.0.1", server.getPort())
          .usePlaintext().serverAuthorizationPolicy(PeerAuthorizationPolicy.uids(NOBODY))
          .fallbackCacheTtl(java.time.Duration.ZERO)
          .intercept(capture).build());
      assertArrayEquals(new byte[] {1}, call(ch, (byte) 1));
      assertEquals(TransportPath.TCP, TransportPath.of(capture.last.get()));
      // A second connection attempt (fresh transport after an idle reset) logs nothing new.
      ch.enterIdle();
      assertArrayEquals(new byte[] {2}, call(ch, (byte) 2));
      assertEquals(1, warnings.size(), warnings.toString());
      assertTrue(warnings.get(0).getMessage().contains("server authorization policy"),
          warnings.get(0).getMessage());

      // The server refusing us is its business (logged there), not a client-policy warning.
      Server picky = ShmServerBuilder.forPort(0)
          .clientAuthorizationPolicy(PeerAuthorizationPolicy.uids(NOBODY))
          .addService(EchoService.definition()).build().start();
      try {
        EchoService.AttributeCapture c2 = new EchoService.AttributeCapture();
        ManagedChannel toPicky = track(ShmChannelBuilder.forAddress("127.0.0.1", picky.getPort())
            .usePlaintext().intercept(c2).build());
        assertArrayEquals(new byte[] {3}, call(toPicky, (byte) 3));
        assertEquals(TransportPath.TCP, TransportPath.of(c2.last.get()));
        assertEquals(1, warnings.size(), warnings.toString());
      } finally {
        picky.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    } finally {
      logger.removeHandler(handler);
    }
  }

  @Test
  void aTlsChannelNeverSilentlyUsesSharedMemory() throws Exception {
    // AUTO: TLS over TCP, which this plaintext server cannot speak: the call fails instead of
    // succeeding over shared memory.
    ManagedChannel auto = track(ShmChannelBuilder.forAddress("127.0.0.1", server.getPort())
        .useTransportSecurity().build());
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> call(auto,
        (byte) 1));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());

    // The default (neither usePlaintext nor useTransportSecurity) is TLS, as in stock grpc.
    ManagedChannel byDefault = track(ShmChannelBuilder.forAddress("127.0.0.1", server.getPort())
        .build());
    assertThrows(StatusRuntimeException.class, () -> call(byDefault, (byte) 1));

    // SHM_ONLY: UNAVAILABLE with the reason.
    ManagedChannel shmOnly = track(ShmChannelBuilder.forAddress("127.0.0.1", server.getPort())
        .useTransportSecurity().transportMode(TransportMode.SHM_ONLY).build());
    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
        () -> call(shmOnly, (byte) 1));
    assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode(), refused.toString());
    assertTrue(refused.getStatus().getDescription().contains("transport security"),
        refused.getStatus().getDescription());

    // Opting in: the co-located server is authenticated by its peer credentials instead.
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannel optIn = track(ShmChannelBuilder.forAddress("127.0.0.1", server.getPort())
        .useTransportSecurity().sharedMemoryWithTransportSecurity(true).intercept(capture)
        .build());
    assertArrayEquals(new byte[] {3}, call(optIn, (byte) 3));
    assertEquals(TransportPath.SHARED_MEMORY, TransportPath.of(capture.last.get()));
  }
}
