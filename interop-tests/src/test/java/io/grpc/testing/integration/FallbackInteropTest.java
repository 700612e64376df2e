package io.grpc.testing.integration;

import io.grpc.ManagedChannelBuilder;
import io.grpc.ServerBuilder;
import io.grpc.netty.InternalNettyServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpcshm.InternalShm;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportPath;
import java.net.InetSocketAddress;
import org.junit.After;
import org.junit.runner.RunWith;
import org.junit.runners.JUnit4;

/**
 * grpc-java's interop suite with our channel (default AUTO mode) against a stock grpc Netty
 * server: no shared-memory listener exists, so every call must transparently use TCP.
 */
@RunWith(JUnit4.class)
public class FallbackInteropTest extends AbstractInteropTest {
  private final TransportPathRecorder paths = new TransportPathRecorder();

  @Override
  protected ServerBuilder<?> getServerBuilder() {
    NettyServerBuilder builder = NettyServerBuilder.forPort(0)
        .flowControlWindow(AbstractInteropTest.TEST_FLOW_CONTROL_WINDOW)
        .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE);
    InternalNettyServerBuilder.setStatsEnabled(builder, false);
    return builder.addStreamTracerFactory(createCustomCensusTracerFactory());
  }

  @Override
  protected ManagedChannelBuilder<?> createChannelBuilder() {
    int port = ((InetSocketAddress) getListenAddress()).getPort();
    ShmChannelBuilder builder = ShmChannelBuilder.forAddress("localhost", port)
        .usePlaintext()
        .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE)
        .configureTcp(netty -> netty.flowControlWindow(AbstractInteropTest.TEST_FLOW_CONTROL_WINDOW));
    InternalShm.setStatsEnabled(builder, false);
    return builder.intercept(createCensusStatsClientInterceptor(), paths);
  }

  @After
  public void assertTcpWasUsed() {
    paths.assertOnly(TransportPath.TCP);
  }
}
