package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.internal.ClientStream;
import io.grpc.internal.ClientTransport;
import io.grpc.internal.DisconnectError;
import io.grpc.internal.FailingClientStream;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.ManagedClientTransport;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmServerBuilder;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The client transport's lifecycle, as grpc's channel drives it, and ping. */
class ShmClientTransportTest {
  private Server server;
  private ScheduledExecutorService scheduler;

  @BeforeEach
  void start() throws Exception {
    server = ShmServerBuilder.forPort(0).build().start();
    scheduler = Executors.newSingleThreadScheduledExecutor();
  }

  @AfterEach
  void stop() throws Exception {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    scheduler.shutdownNow();
  }

  private ShmClientTransport transport(String rendezvous) {
    return new ShmClientTransport(List.of(rendezvous), null,
        new InetSocketAddress("localhost", server.getPort()), "localhost", null, Attributes.EMPTY,
        ShmTransportConfig.defaults(), scheduler, GrpcUtil.KEEPALIVE_TIME_NANOS_DISABLED,
        GrpcUtil.DEFAULT_KEEPALIVE_TIMEOUT_NANOS, false, null);
  }

  @Test
  void readyPingShutdownTerminated() throws Exception {
    ShmClientTransport t = transport(ShmAddress.defaultRendezvous(server.getPort()));
    RecordingTransportListener events = new RecordingTransportListener();
    assertNull(t.start(events));
    assertTrue(events.ready.await(30, TimeUnit.SECONDS));
    CountDownLatch pinged = new CountDownLatch(1);
    AtomicLong rtt = new AtomicLong(-1);
    t.ping(new ClientTransport.PingCallback() {
      @Override
      public void onSuccess(long roundTripTimeNanos) {
        rtt.set(roundTripTimeNanos);
        pinged.countDown();
      }

      @Override
      public void onFailure(Status cause) {
        pinged.countDown();
      }
    }, Runnable::run);
    assertTrue(pinged.await(30, TimeUnit.SECONDS));
    assertTrue(rtt.get() >= 0, "ping answered");
    t.shutdown(Status.UNAVAILABLE.withDescription("test"));
    assertTrue(events.terminated.await(30, TimeUnit.SECONDS));
    assertEquals("ready;shutdown;terminated;", events.order.toString());
    ClientStream late = t.newStream(io.grpcshm.EchoServiceAccess.unary(), new Metadata(),
        CallOptions.DEFAULT, new ClientStreamTracer[0]);
    assertInstanceOf(FailingClientStream.class, late, "no new streams after shutdown");
  }

  @Test
  void missingServerIsReportedAsUnavailable() throws Exception {
    ShmClientTransport t = transport("@grpc-shm/no-such-server-" + System.nanoTime());
    RecordingTransportListener events = new RecordingTransportListener();
    assertNull(t.start(events));
    assertTrue(events.terminated.await(30, TimeUnit.SECONDS));
    assertEquals("shutdown;terminated;", events.order.toString());
    assertEquals(Status.Code.UNAVAILABLE, events.shutdownStatus.get().getCode());
  }
}
