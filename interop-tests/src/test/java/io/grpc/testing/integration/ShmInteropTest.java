package io.grpc.testing.integration;

import io.grpc.ManagedChannelBuilder;
import io.grpc.ServerBuilder;
import io.grpcshm.InternalShm;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import java.net.InetSocketAddress;
import org.junit.After;
import org.junit.runner.RunWith;
import org.junit.runners.JUnit4;

/**
 * grpc-java's interop suite with client and server in this JVM, connected over shared memory.
 * (The class lives in grpc's test package because the suite's listen-address accessor is
 * package-private.)
 */
@RunWith(JUnit4.class)
public class ShmInteropTest extends AbstractInteropTest {
  private final TransportPathRecorder paths = new TransportPathRecorder();

  @Override
  protected ServerBuilder<?> getServerBuilder() {
    ShmServerBuilder builder = ShmServerBuilder.forPort(0)
        .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE);
    InternalShm.setStatsEnabled(builder, false);
    return builder.addStreamTracerFactory(createCustomCensusTracerFactory());
  }

  @Override
  protected ManagedChannelBuilder<?> createChannelBuilder() {
    int port = ((InetSocketAddress) getListenAddress()).getPort();
    ShmChannelBuilder builder = ShmChannelBuilder.forAddress("localhost", port)
        .usePlaintext()
        .transportMode(TransportMode.SHM_ONLY)
        .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE);
    InternalShm.setStatsEnabled(builder, false);
    return builder.intercept(createCensusStatsClientInterceptor(), paths);
  }

  @After
  public void assertSharedMemoryWasUsed() {
    paths.assertOnly(TransportPath.SHARED_MEMORY);
  }
}
