package io.grpcshm.loadgen;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The built-in echo service on stock grpc Netty over a Unix domain socket (epoll), and a channel
 * to it: {@code compare}'s "uds" transport, HTTP/2 without TCP — what co-located services often
 * use instead of loopback TCP.
 */
final class UnixSocketEcho implements AutoCloseable {
  private final Path dir;
  private final Path socket;
  private final EventLoopGroup boss = new EpollEventLoopGroup(1);
  private final EventLoopGroup workers = new EpollEventLoopGroup(1);
  private final EventLoopGroup clientLoop = new EpollEventLoopGroup(1);
  private final Server server;
  private final ManagedChannel channel;

  UnixSocketEcho() throws IOException {
    dir = Files.createTempDirectory("grpc-load-uds");
    socket = dir.resolve("echo.sock");
    try {
      server = NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
          .channelType(EpollServerDomainSocketChannel.class)
          .bossEventLoopGroup(boss).workerEventLoopGroup(workers)
          .maxInboundMessageSize(Calls.MAX_MESSAGE_BYTES)
          .addService(new BuiltinEcho()).build().start();
    } catch (IOException | RuntimeException e) {
      shutdownGroups();
      throw e;
    }
    channel = NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
        .channelType(EpollDomainSocketChannel.class).eventLoopGroup(clientLoop)
        .usePlaintext().maxInboundMessageSize(Calls.MAX_MESSAGE_BYTES).build();
  }

  ManagedChannel channel() {
    return channel;
  }

  @Override
  public void close() throws InterruptedException, IOException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    shutdownGroups();
    Files.deleteIfExists(socket);
    Files.deleteIfExists(dir);
  }

  private void shutdownGroups() {
    for (EventLoopGroup g : new EventLoopGroup[] {clientLoop, workers, boss}) {
      g.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
  }
}
