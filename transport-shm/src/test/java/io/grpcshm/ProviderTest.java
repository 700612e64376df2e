package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.ClientCalls;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** With the jar on the class path, stock grpc entry points pick shared memory with no code change. */
class ProviderTest {
  @Test
  void stockEntryPointsGetSharedMemory() throws Exception {
    ServerBuilder<?> sb = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create());
    assertInstanceOf(ShmServerBuilder.class, sb);
    Server server = sb.addService(EchoService.definition()).build().start();
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannelBuilder<?> cb = Grpc.newChannelBuilder("localhost:" + server.getPort(),
        InsecureChannelCredentials.create());
    assertInstanceOf(ShmChannelBuilder.class, cb);
    ManagedChannel ch = cb.intercept(capture).build();
    try {
      assertArrayEquals(new byte[] {4, 2}, ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
          CallOptions.DEFAULT, new byte[] {4, 2}));
      assertEquals(TransportPath.SHARED_MEMORY, TransportPath.of(capture.last.get()));
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void tlsChannelsStayOnNetty() {
    ManagedChannelBuilder<?> cb = Grpc.newChannelBuilder("localhost:443",
        TlsChannelCredentials.create());
    assertFalse(cb instanceof ShmChannelBuilder, cb.getClass().getName());
  }

  @Test
  void systemPropertySwitchesTheProvidersOff() {
    String old = System.getProperty(ShmChannelProvider.ENABLED_PROPERTY);
    try {
      System.setProperty(ShmChannelProvider.ENABLED_PROPERTY, "false");
      assertFalse(new ShmChannelProvider().isAvailable());
      assertFalse(new ShmServerProvider().isAvailable());
      System.setProperty(ShmChannelProvider.ENABLED_PROPERTY, "true");
      assertTrue(new ShmChannelProvider().isAvailable());
    } finally {
      if (old == null) {
        System.clearProperty(ShmChannelProvider.ENABLED_PROPERTY);
      } else {
        System.setProperty(ShmChannelProvider.ENABLED_PROPERTY, old);
      }
    }
  }
}
