package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.util.Timestamps;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.InternalChannelz;
import io.grpc.InternalChannelz.ChannelStats;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalInstrumented;
import io.grpc.InternalWithLogId;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.channelz.v1.Channel;
import io.grpc.channelz.v1.ChannelRef;
import io.grpc.channelz.v1.ChannelzGrpc;
import io.grpc.channelz.v1.GetChannelRequest;
import io.grpc.channelz.v1.GetServerSocketsRequest;
import io.grpc.channelz.v1.GetServersRequest;
import io.grpc.channelz.v1.GetSocketRequest;
import io.grpc.channelz.v1.GetSubchannelRequest;
import io.grpc.channelz.v1.GetTopChannelsRequest;
import io.grpc.channelz.v1.Socket;
import io.grpc.channelz.v1.SocketOption;
import io.grpc.channelz.v1.SocketRef;
import io.grpc.channelz.v1.Subchannel;
import io.grpc.channelz.v1.SubchannelRef;
import io.grpc.protobuf.services.ChannelzService;
import io.grpc.stub.ClientCalls;
import io.grpcshm.internal.nativeio.Linux;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * grpc's own ChannelzService, queried over a shared-memory channel, shows the shared-memory
 * sockets of both ends with the calls this test made on them.
 */
class ChannelzTest {
  private static final int SMALL_CALLS = 5;
  private static final int LARGE = 200_000;

  @Test
  void channelzShowsSharedMemorySocketsWithTheirCalls() throws Exception {
    long startNanos = System.currentTimeMillis() * 1_000_000L;
    Server server = ShmServerBuilder.forPort(0)
        .addService(EchoService.definition())
        .addService(ChannelzService.newInstance(100))
        .build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try {
      for (int i = 0; i < SMALL_CALLS; i++) {
        ClientCalls.blockingUnaryCall(channel, EchoService.UNARY, CallOptions.DEFAULT,
            new byte[100]);
      }
      ClientCalls.blockingUnaryCall(channel, EchoService.UNARY, CallOptions.DEFAULT,
          new byte[LARGE]);
      StatusRuntimeException unimplemented = assertThrows(StatusRuntimeException.class,
          () -> ClientCalls.blockingUnaryCall(channel, io.grpc.MethodDescriptor
              .<byte[], byte[]>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName("no.Such/Method")
              .setRequestMarshaller(EchoService.BYTES).setResponseMarshaller(EchoService.BYTES)
              .build(), CallOptions.DEFAULT, new byte[1]));
      assertEquals(Status.Code.UNIMPLEMENTED, unimplemented.getStatus().getCode());
      int calls = SMALL_CALLS + 2;

      ChannelzGrpc.ChannelzBlockingStub channelz = ChannelzGrpc.newBlockingStub(channel)
          .withDeadlineAfter(30, TimeUnit.SECONDS);
      int uid = Linux.getuid();
      long pid = ProcessHandle.current().pid();

      // Server side: the shared-memory server's listen socket and the socket serving us.
      String listenName = "shm:" + ShmAddress.defaultRendezvous(server.getPort());
      io.grpc.channelz.v1.Server shmServer = channelz.getServers(GetServersRequest.newBuilder()
              .setStartServerId(0).build()).getServerList().stream()
          .filter(s -> s.getListenSocketList().stream().anyMatch(l ->
              socket(channelz, l).getLocal().getOtherAddress().getName().equals(listenName)))
          .findFirst().orElseThrow(() -> new AssertionError("no shared-memory server listed"));
      Socket listen = socket(channelz, shmServer.getListenSocket(0));
      assertTrue(Long.parseLong(options(listen).get("shm.connections_established")) >= 1);

      List<Socket> serverSockets = new ArrayList<>();
      for (SocketRef ref : channelz.getServerSockets(GetServerSocketsRequest.newBuilder()
          .setServerId(shmServer.getRef().getServerId()).build()).getSocketRefList()) {
        serverSockets.add(socket(channelz, ref));
      }
      Socket served = serverSockets.stream()
          .filter(s -> s.getRemote().getOtherAddress().getName().contains("pid=" + pid + ","))
          .findFirst().orElseThrow(() -> new AssertionError("our connection is not listed: "
              + serverSockets));
      assertCalls(served, calls, startNanos);
      assertTrue(served.getData().getMessagesReceived() >= SMALL_CALLS + 1, served.toString());
      assertPeer(served, (int) pid, uid);
      assertTrue(Long.parseLong(options(served).get("shm.data_bytes_received"))
          >= SMALL_CALLS * 100L + LARGE, served.toString());
      assertTrue(Long.parseLong(options(served).get("shm.data_bytes_sent"))
          >= SMALL_CALLS * 100L + LARGE, served.toString());
      assertNotNull(options(served).get("shm.movement.cpu"), served.toString());

      // Client side: channel -> subchannel -> its shared-memory socket.
      Channel ours = channelz.getTopChannels(GetTopChannelsRequest.newBuilder()
              .setStartChannelId(0).build()).getChannelList().stream()
          .filter(c -> c.getData().getTarget().endsWith(":" + server.getPort()))
          .findFirst().orElseThrow(() -> new AssertionError("our channel is not listed"));
      Channel fresh = channelz.getChannel(GetChannelRequest.newBuilder()
          .setChannelId(ours.getRef().getChannelId()).build()).getChannel();
      List<Socket> clientSockets = new ArrayList<>();
      for (SubchannelRef ref : fresh.getSubchannelRefList()) {
        Subchannel sub = channelz.getSubchannel(GetSubchannelRequest.newBuilder()
            .setSubchannelId(ref.getSubchannelId()).build()).getSubchannel();
        for (SocketRef s : sub.getSocketRefList()) {
          clientSockets.add(socket(channelz, s));
        }
      }
      assertEquals(1, clientSockets.size(), clientSockets.toString());
      Socket client = clientSockets.get(0);
      assertCalls(client, calls, startNanos);
      assertTrue(client.getData().getMessagesSent() >= SMALL_CALLS + 1, client.toString());
      assertTrue(client.getLocal().getOtherAddress().getName()
          .contains("pid=" + pid + ",uid=" + uid + "]"), client.getLocal().toString());
      assertPeer(client, (int) pid, uid);
      assertTrue(Long.parseLong(options(client).get("shm.data_bytes_sent"))
          >= SMALL_CALLS * 100L + LARGE, client.toString());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * Messages an application writes after its call closed are dropped, and not counted: the
   * closed stream's tracer may already count for another stream of the connection.
   */
  @Test
  void messagesWrittenAfterTheCallClosedAreNotCounted() throws Exception {
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition())
        .build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).disableRetry().build();
    try {
      MethodDescriptor<byte[], byte[]> missing = MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.BIDI_STREAMING)
          .setFullMethodName("no.Such/Method")
          .setRequestMarshaller(EchoService.BYTES).setResponseMarshaller(EchoService.BYTES)
          .build();
      ClientCall<byte[], byte[]> call = channel.newCall(missing,
          CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS));
      CompletableFuture<Status> closed = new CompletableFuture<>();
      call.start(new ClientCall.Listener<>() {
        @Override
        public void onClose(Status status, Metadata trailers) {
          closed.complete(status);
        }
      }, new Metadata());
      assertEquals(Status.Code.UNIMPLEMENTED, closed.get(30, TimeUnit.SECONDS).getCode());
      for (int i = 0; i < 5; i++) {
        call.sendMessage(new byte[10]); // grpc lets them through; the transport drops them
      }
      // One more call on the connection, which takes the closed stream's tracer.
      ClientCalls.blockingUnaryCall(channel, EchoService.UNARY, CallOptions.DEFAULT,
          new byte[1]);

      InternalInstrumented<SocketStats> socket = clientSocket(server.getPort());
      SocketStats stats = socket.getStats().get(30, TimeUnit.SECONDS);
      assertEquals(1, stats.data.messagesSent, "only the unary call's request was sent");
      assertEquals(2, stats.data.streamsStarted);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** The shared-memory socket of this JVM's one channel to {@code port}, from grpc's registry. */
  @SuppressWarnings("unchecked")
  private static InternalInstrumented<SocketStats> clientSocket(int port) throws Exception {
    for (InternalInstrumented<ChannelStats> root
        : InternalChannelz.instance().getRootChannels(0, 1000).channels) {
      ChannelStats channelStats = root.getStats().get(30, TimeUnit.SECONDS);
      if (!channelStats.target.endsWith(":" + port)) {
        continue;
      }
      for (InternalWithLogId sub : channelStats.subchannels) {
        ChannelStats subStats = ((InternalInstrumented<ChannelStats>) sub).getStats()
            .get(30, TimeUnit.SECONDS);
        if (!subStats.sockets.isEmpty()) {
          return (InternalInstrumented<SocketStats>) subStats.sockets.get(0);
        }
      }
    }
    throw new AssertionError("no client socket to port " + port);
  }

  private static Socket socket(ChannelzGrpc.ChannelzBlockingStub channelz, SocketRef ref) {
    return channelz.getSocket(GetSocketRequest.newBuilder().setSocketId(ref.getSocketId())
        .build()).getSocket();
  }

  private static Map<String, String> options(Socket socket) {
    return socket.getData().getOptionList().stream()
        .collect(Collectors.toMap(SocketOption::getName, SocketOption::getValue,
            (a, b) -> a));
  }

  /**
   * The calls made before the query (and at most the few channelz calls in between) started on
   * this socket; the unimplemented one failed. Counted as grpc counts them, possibly a moment
   * late for a call whose trailers the client already read: hence at-least bounds.
   */
  private static void assertCalls(Socket socket, int calls, long startNanos) {
    var d = socket.getData();
    assertTrue(d.getStreamsStarted() >= calls && d.getStreamsStarted() <= calls + 10,
        socket.toString());
    assertTrue(d.getStreamsSucceeded() >= calls - 2, socket.toString());
    assertTrue(d.getStreamsFailed() >= 1, socket.toString());
    assertTrue(Timestamps.toNanos(d.getLastMessageSentTimestamp()) >= startNanos,
        socket.toString());
    assertTrue(Timestamps.toNanos(d.getLastMessageReceivedTimestamp()) >= startNanos,
        socket.toString());
  }

  private static void assertPeer(Socket socket, int pid, int uid) throws Exception {
    assertEquals("grpc-shm SO_PEERCRED", socket.getSecurity().getOther().getName());
    Struct peer = socket.getSecurity().getOther().getValue().unpack(Struct.class);
    assertEquals(uid, (int) peer.getFieldsOrThrow("uid").getNumberValue());
    assertEquals(pid, (int) peer.getFieldsOrThrow("pid").getNumberValue());
    assertEquals(Integer.toString(uid), options(socket).get("shm.peer_uid"));
  }
}
