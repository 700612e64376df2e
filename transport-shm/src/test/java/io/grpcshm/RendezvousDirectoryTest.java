package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.stub.ClientCalls;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The node-local rendezvous directory within one network namespace (NetnsTest: across them). */
class RendezvousDirectoryTest {
  @TempDir
  Path dir;

  @Test
  void fileNameIsTheAddress() throws Exception {
    assertEquals(dir.resolve("10.213.7.1_50051.sock").toString(), ShmAddress.directoryRendezvous(
        dir, new InetSocketAddress(InetAddress.getByName("10.213.7.1"), 50051)));
    assertEquals(dir.resolve("fd00::1_7.sock").toString(), ShmAddress.directoryRendezvous(
        dir, new InetSocketAddress(InetAddress.getByName("fd00:0:0::1"), 7)));
  }

  @Test
  void loopbackAndLinkLocalAreNeverPublished() throws Exception {
    assertEquals(0, ShmServer.publishedAddresses(
        new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 5)).size());
    for (InetSocketAddress a : ShmServer.publishedAddresses(new InetSocketAddress(5))) {
      assertTrue(!a.getAddress().isLoopbackAddress() && !a.getAddress().isLinkLocalAddress(),
          a.toString());
    }
  }

  @Test
  void aLoopbackServerPublishesNothingAndLocalClientsKeepTheAbstractName() throws Exception {
    Server server = ShmServerBuilder.forAddress(
            new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0))
        .rendezvousDirectory(dir)
        .addService(EchoService.definition())
        .build().start();
    ManagedChannel ch = ShmChannelBuilder.forAddress("127.0.0.1", server.getPort())
        .usePlaintext().rendezvousDirectory(dir).transportMode(TransportMode.SHM_ONLY).build();
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(0, files.count());
      EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
      ClientCalls.blockingUnaryCall(ClientInterceptors.intercept(ch, capture), EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[] {1});
      assertEquals(TransportPath.SHARED_MEMORY, TransportPath.of(capture.last.get()));
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void aWildcardServerPublishesItsAddressesAndRemovesThemAtShutdown() throws Exception {
    Server server = ShmServerBuilder.forPort(0).rendezvousDirectory(dir)
        .addService(EchoService.definition()).build().start();
    int expected = ShmServer.publishedAddresses(
        (InetSocketAddress) server.getListenSockets().get(0)).size();
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(expected, files.count());
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    long left;
    do {
      try (Stream<Path> files = Files.list(dir)) {
        left = files.count();
      }
    } while (left > 0 && System.nanoTime() < deadline);
    assertEquals(0, left);
  }
}
