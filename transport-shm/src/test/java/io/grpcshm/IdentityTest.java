package io.grpcshm;

import io.grpcshm.childjvm.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.ShmHandshakeException;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * A channel reaches exactly the server a TCP connection to its target would reach; shared memory is
 * only taken to the server that owns the target address.
 */
class IdentityTest {
  private static final MethodDescriptor<byte[], byte[]> WHO =
      MethodDescriptor.<byte[], byte[]>newBuilder()
      .setType(MethodDescriptor.MethodType.UNARY)
      .setFullMethodName(MethodDescriptor.generateFullMethodName("grpcshm.test.Who", "Name"))
      .setRequestMarshaller(EchoService.BYTES)
      .setResponseMarshaller(EchoService.BYTES)
      .build();

  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();

  @AfterEach
  void cleanUp() throws InterruptedException {
    for (ManagedChannel c : channels) {
      c.shutdownNow();
    }
    for (Server s : servers) {
      s.shutdownNow();
    }
    for (ManagedChannel c : channels) {
      c.awaitTermination(5, TimeUnit.SECONDS);
    }
    for (Server s : servers) {
      s.awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static ServerServiceDefinition who(String name) {
    byte[] answer = name.getBytes(StandardCharsets.UTF_8);
    return ServerServiceDefinition.builder("grpcshm.test.Who")
        .addMethod(WHO, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(answer);
          obs.onCompleted();
        }))
        .build();
  }

  private Server shmServer(InetSocketAddress bind, String name) throws IOException {
    Server s = ShmServerBuilder.forAddress(bind).addService(who(name)).build();
    servers.add(s);
    return s.start();
  }

  private Server shmServerOnPort(int port, String name) throws IOException {
    Server s = ShmServerBuilder.forPort(port).addService(who(name)).build();
    servers.add(s);
    return s.start();
  }

  private Server nettyServer(InetSocketAddress bind, String name) throws IOException {
    Server s = NettyServerBuilder.forAddress(bind).addService(who(name)).build();
    servers.add(s);
    return s.start();
  }

  private static InetSocketAddress at(String ip, int port) {
    return new InetSocketAddress(ip(ip), port);
  }

  private static InetAddress ip(String ip) {
    try {
      return InetAddress.getByName(ip);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  /** Which server answered and over which path. */
  private record Answer(String server, TransportPath path) {}

  private Answer ask(ShmChannelBuilder builder) {
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannel ch = builder.usePlaintext().intercept(capture).build();
    channels.add(ch);
    return ask(ch, capture);
  }

  private static Answer ask(ManagedChannel ch, EchoService.AttributeCapture capture) {
    byte[] name = ClientCalls.blockingUnaryCall(ch, WHO,
        CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]);
    return new Answer(new String(name, StandardCharsets.UTF_8),
        TransportPath.of(capture.last.get()));
  }

  private static String target(String ip, int port) {
    return ip.contains(":") ? "[" + ip + "]:" + port : ip + ":" + port;
  }

  private static boolean ipv6LoopbackAvailable() {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getByName("::1"), 0));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * A grpc-shm server on 127.0.0.1 and a stock Netty server on 127.0.0.2, one port: the channel
   * to 127.0.0.2 must reach Netty over TCP, not the shared-memory listener of the other address.
   */
  @Test
  void specificBindsRouteEachTargetToItsOwner() throws Exception {
    Server shm = shmServer(at("127.0.0.1", 0), "shm@127.0.0.1");
    int port = shm.getPort();
    nettyServer(at("127.0.0.2", port), "netty@127.0.0.2");

    assertEquals(new Answer("netty@127.0.0.2", TransportPath.TCP),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.2", port))));
    assertEquals(new Answer("shm@127.0.0.1", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));

    // The same through the provider SPI (stock grpc entry point).
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannel spi = Grpc.newChannelBuilder(target("127.0.0.2", port),
        InsecureChannelCredentials.create()).intercept(capture).build();
    channels.add(spi);
    assertEquals(new Answer("netty@127.0.0.2", TransportPath.TCP), ask(spi, capture));
  }

  @Test
  void wildcardBindIsReachedOverSharedMemoryFromEveryLocalAddress() throws Exception {
    Server shm = shmServerOnPort(0, "shm@*");
    int port = shm.getPort();
    assertEquals(new Answer("shm@*", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));
    assertEquals(new Answer("shm@*", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.2", port))));
    assertEquals(new Answer("shm@*", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget("localhost:" + port)));
    if (ipv6LoopbackAvailable()) {
      assertEquals(new Answer("shm@*", TransportPath.SHARED_MEMORY),
          ask(ShmChannelBuilder.forTarget(target("::1", port))));
    }
  }

  @Test
  void ipv6LoopbackAndIpv4LoopbackAreDifferentServers() throws Exception {
    Assumptions.assumeTrue(ipv6LoopbackAvailable(),
        "IPv6 loopback (::1) cannot be bound on this machine");
    Server shm = shmServer(at("::1", 0), "shm@::1");
    int port = shm.getPort();
    nettyServer(at("127.0.0.1", port), "netty@127.0.0.1");
    assertEquals(new Answer("netty@127.0.0.1", TransportPath.TCP),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));
    assertEquals(new Answer("shm@::1", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("::1", port))));
  }

  @Test
  void shmOnlyToAnAddressTheServerDoesNotOwnIsUnavailableWithAReason() throws Exception {
    Server shm = shmServer(at("127.0.0.1", 0), "shm@127.0.0.1");
    int port = shm.getPort();
    ManagedChannel ch = ShmChannelBuilder.forTarget(target("127.0.0.2", port)).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    channels.add(ch);
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(ch, WHO,
            CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
    assertTrue(e.getStatus().getDescription().contains("no shared-memory server for /127.0.0.2:"
        + port), e.getStatus().getDescription());

    // Both sides forced onto one explicit name: the server still refuses the foreign target.
    String name = "@grpc-shm-test/" + UUID.randomUUID();
    Server named = ShmServerBuilder.forAddress(at("127.0.0.1", 0)).rendezvous(name)
        .addService(who("named")).build();
    servers.add(named.start());
    ManagedChannel forced = ShmChannelBuilder.forTarget(target("127.0.0.2", named.getPort()))
        .usePlaintext().rendezvous(name).transportMode(TransportMode.SHM_ONLY).build();
    channels.add(forced);
    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(forced, WHO,
            CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]));
    assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode(), refused.toString());
    assertTrue(refused.getStatus().getDescription().contains(
        "this server does not serve /127.0.0.2:" + named.getPort()),
        refused.getStatus().getDescription());
    // ... while the address it owns is served through that name.
    assertEquals(new Answer("named", TransportPath.SHARED_MEMORY), ask(ShmChannelBuilder
        .forTarget(target("127.0.0.1", named.getPort())).rendezvous(name)));
  }

  @Test
  void aClientThatLiesAboutItsTargetIsRefused() throws Exception {
    Server shm = shmServer(at("127.0.0.1", 0), "shm@127.0.0.1");
    int port = shm.getPort();
    String name = ShmAddress.rendezvousFor(at("127.0.0.1", port));
    assertEquals("@grpc-shm/127.0.0.1/" + port, name);
    ShmTransportConfig config = ShmTransportConfig.defaults();
    for (InetSocketAddress lie : List.of(at("127.0.0.2", port), at("127.0.0.1", port + 1),
        at("::1", port))) {
      ShmHandshakeException e = assertThrows(ShmHandshakeException.class,
          () -> Handshakes.client(name, config, lie));
      assertEquals(Status.Code.UNAVAILABLE, e.status().getCode(), e.toString());
      assertTrue(e.status().getDescription().contains("this server does not serve"),
          e.status().getDescription());
    }
    // The truth is served.
    Handshakes.Established ok = Handshakes.client(name, config, at("127.0.0.1", port));
    ok.socket().close();
    ok.mapping().close();
  }

  @Test
  void aPortReusedByAnotherServerReachesTheNewServer() throws Exception {
    Server first = shmServer(at("127.0.0.1", 0), "first");
    int port = first.getPort();
    assertEquals(new Answer("first", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));
    first.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    // Its abstract name went with its socket: a stock server on the same port gets the calls.
    Server second = nettyServer(at("127.0.0.1", port), "second");
    assertEquals(new Answer("second", TransportPath.TCP),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));
    second.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    // And a new shm server on the same port, bound to the wildcard address, is the owner now.
    shmServerOnPort(port, "third");
    assertEquals(new Answer("third", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));
  }

  @Test
  void aServerKilledWithSigkillLeavesNoRendezvousBehind() throws Exception {
    int port;
    try (ChildJvm child = ChildJvm.start(EchoServerMain.class)) {
      port = child.port();
      ManagedChannel live = ShmChannelBuilder.forTarget(target("127.0.0.1", port)).usePlaintext()
          .transportMode(TransportMode.SHM_ONLY).build();
      channels.add(live);
      ClientCalls.blockingUnaryCall(live, EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[] {1});
      child.kill();
    }
    // Its abstract name died with it: nothing answers, no wrong process is reached.
    ManagedChannel after = ShmChannelBuilder.forTarget(target("127.0.0.1", port)).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    channels.add(after);
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(after, WHO,
            CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
    assertTrue(e.getStatus().getDescription().contains("no shared-memory server"),
        e.getStatus().getDescription());
    // A new server on the same port is the owner now, and is found.
    shmServer(at("127.0.0.1", port), "successor");
    assertEquals(new Answer("successor", TransportPath.SHARED_MEMORY),
        ask(ShmChannelBuilder.forTarget(target("127.0.0.1", port))));
  }
}
