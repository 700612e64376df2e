package io.grpc.testing.integration;

import io.grpc.ManagedChannelBuilder;
import io.grpcshm.InternalShm;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.childjvm.ChildJvm;
import java.time.Duration;
import org.junit.After;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.runner.RunWith;
import org.junit.runners.JUnit4;

/**
 * grpc-java's interop suite against a server in a second JVM, over shared memory: the real
 * deployment. Server-side stats checks are skipped by the suite itself when the server is not in
 * this process (getServerBuilder() returns null).
 */
@RunWith(JUnit4.class)
public class ShmCrossProcessInteropTest extends AbstractInteropTest {
  private static ChildJvm server;
  private final TransportPathRecorder paths = new TransportPathRecorder();

  @BeforeClass
  public static void startServerProcess() throws Exception {
    server = ChildJvm.of(ShmInteropServerMain.class).jvmOptions("-Xmx1g")
        .startReady(Duration.ofSeconds(60));
  }

  @AfterClass
  public static void stopServerProcess() throws Exception {
    if (server != null) {
      server.close();
    }
  }

  @Override
  protected ManagedChannelBuilder<?> createChannelBuilder() {
    ShmChannelBuilder builder = ShmChannelBuilder.forAddress("localhost", server.port())
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
