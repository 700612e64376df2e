package io.grpcshm.internal.fallback;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import io.grpc.ChannelLogger;
import io.grpc.internal.ClientTransportFactory;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.netty.InternalNettyChannelBuilder;
import io.grpc.netty.NettyChannelBuilder;
import io.grpcshm.ShmAddress;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.transport.ShmClientTransport;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.net.InetSocketAddress;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Which transport the channel gets for which address (no connection is made). */
class RoutingClientTransportFactoryTest {
  private RoutingClientTransportFactory factory;

  private RoutingClientTransportFactory factory(TransportMode mode) {
    ClientTransportFactory tcp = InternalNettyChannelBuilder.buildTransportFactory(
        NettyChannelBuilder.forTarget("unused").usePlaintext());
    factory = new RoutingClientTransportFactory(tcp, new RoutingClientTransportFactory.ShmSettings(
        mode, ShmTransportConfig.defaults(), ShmAddress::clientRendezvous, Long.MAX_VALUE,
        20_000_000_000L, false, Duration.ofSeconds(10)));
    return factory;
  }

  @AfterEach
  void close() {
    factory.close();
  }

  private static ConnectionClientTransport newTransport(RoutingClientTransportFactory f,
      InetSocketAddress address) {
    return f.newClientTransport(address, new ClientTransportFactory.ClientTransportOptions()
        .setAuthority("test"), new NoopLogger());
  }

  @Test
  void localAddressesTryShmFirst() {
    RoutingClientTransportFactory f = factory(TransportMode.AUTO);
    assertInstanceOf(FallbackClientTransport.class,
        newTransport(f, new InetSocketAddress("127.0.0.1", 50051)));
  }

  @Test
  void remoteAddressesGoStraightToTcp() {
    RoutingClientTransportFactory f = factory(TransportMode.AUTO);
    ConnectionClientTransport t = newTransport(f, new InetSocketAddress("203.0.113.7", 50051));
    assertFalse(t instanceof FallbackClientTransport || t instanceof ShmClientTransport,
        t.getClass().getName());
  }

  @Test
  void shmOnlyNeverMapsARemoteAddressToALocalServer() throws Exception {
    ConnectionClientTransport t = newTransport(factory(TransportMode.SHM_ONLY),
        new InetSocketAddress("203.0.113.7", 50051));
    io.grpcshm.internal.transport.RecordingTransportListener events =
        new io.grpcshm.internal.transport.RecordingTransportListener();
    t.start(events);
    org.junit.jupiter.api.Assertions.assertTrue(
        events.terminated.await(30, java.util.concurrent.TimeUnit.SECONDS));
    org.junit.jupiter.api.Assertions.assertEquals(io.grpc.Status.Code.UNAVAILABLE,
        events.shutdownStatus.get().getCode());
    org.junit.jupiter.api.Assertions.assertTrue(
        events.shutdownStatus.get().getDescription().contains("not local"));
  }

  @Test
  void modesOverrideDetection() {
    assertInstanceOf(ShmClientTransport.class,
        newTransport(factory(TransportMode.SHM_ONLY), new InetSocketAddress("127.0.0.1", 1)));
    factory.close();
    ConnectionClientTransport t =
        newTransport(factory(TransportMode.TCP_ONLY), new InetSocketAddress("127.0.0.1", 1));
    assertFalse(t instanceof FallbackClientTransport || t instanceof ShmClientTransport);
  }

  static final class NoopLogger extends ChannelLogger {
    @Override
    public void log(ChannelLogLevel level, String message) {}

    @Override
    public void log(ChannelLogLevel level, String messageFormat, Object... args) {}
  }
}
