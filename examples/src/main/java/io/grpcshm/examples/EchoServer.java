package io.grpcshm.examples;

import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.grpcshm.ProtobufParsing;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.codec.ZeroCopyServices;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * The {@link EchoService} server that the demo and the benchmark start in a child JVM.
 * Usage: {@code EchoServer [shm|shm-grpc-parsing|shm-zerocopy|netty|netty-uds] [port]}:
 * {@code shm} (default) is grpc-shm's server (TCP and shared memory), {@code shm-grpc-parsing}
 * the same with {@link ProtobufParsing#STOCK} (grpc's protobuf marshaller exactly, as before
 * grpc-shm parsed large messages itself), {@code shm-zerocopy} the same with the upload service's
 * marshallers swapped for the zero-copy codec, {@code netty} is a stock grpc
 * {@code NettyServerBuilder} server with no grpc-shm code in its path, {@code netty-uds} the same
 * on the Unix socket {@link #udsPath}({@code port}). Port 0 (default) picks a free one.
 */
@Command(name = "EchoServer", mixinStandardHelpOptions = true,
    description = "The echo server of the demo and the benchmarks; prints its port when ready.")
public final class EchoServer implements Callable<Integer> {
  private static final List<String> STACKS =
      List.of("shm", "shm-grpc-parsing", "shm-zerocopy", "netty", "netty-uds");

  @Parameters(index = "0", defaultValue = "shm", paramLabel = "STACK",
      description = "shm, shm-grpc-parsing, shm-zerocopy, netty or netty-uds (${DEFAULT-VALUE})")
  String stack;

  @Parameters(index = "1", defaultValue = "0", paramLabel = "PORT",
      description = "TCP port, or the number of the Unix socket (0: a free port)")
  int port;

  @Mixin ExitWithParent.Flag exitWithParent;

  @Spec CommandSpec spec;

  EchoServer() {}

  /** The Unix socket a {@code netty-uds} server with this number listens on. */
  static String udsPath(int number) {
    return System.getProperty("java.io.tmpdir") + "/grpc-shm-bench-" + number + ".sock";
  }

  public static void main(String[] args) {
    Mains.run(new EchoServer(), args);
  }


  @Override
  public Integer call() throws IOException, InterruptedException {
    if (!STACKS.contains(stack)) {
      throw new ParameterException(spec.commandLine(),
          "STACK must be one of " + STACKS + ": " + stack);
    }
    Server server = switch (stack) {
      case "shm" -> ShmServerBuilder.forPort(port)
          .addService(EchoService.definition())
          .addService(new BlobServiceImpl())
          .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
          .build();
      case "shm-grpc-parsing" -> ShmServerBuilder.forPort(port)
          .protobufParsing(ProtobufParsing.STOCK)
          .addService(EchoService.definition())
          .addService(new BlobServiceImpl())
          .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
          .build();
      case "shm-zerocopy" -> ShmServerBuilder.forPort(port)
          .addService(EchoService.definition())
          .addService(ZeroCopyServices.rewrite(new BlobServiceImpl()))
          .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
          .build();
      case "netty" -> NettyServerBuilder.forPort(port)
          .addService(EchoService.definition())
          .addService(new BlobServiceImpl())
          .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
          .build();
      case "netty-uds" -> NettyServerBuilder
          .forAddress(new io.netty.channel.unix.DomainSocketAddress(udsPath(port)))
          .channelType(io.netty.channel.epoll.EpollServerDomainSocketChannel.class)
          .bossEventLoopGroup(new io.netty.channel.epoll.EpollEventLoopGroup(1))
          .workerEventLoopGroup(new io.netty.channel.epoll.EpollEventLoopGroup(1))
          .addService(EchoService.definition())
          .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
          .build();
      default -> throw new AssertionError(stack);
    };
    server.start();
    // A Unix-socket server has no port: it reports the number its socket path is derived from.
    int reported = stack.equals("netty-uds") ? port : server.getPort();
    System.out.println("EchoServer (" + stack + ", pid " + ProcessHandle.current().pid()
        + ") listening on port " + reported);
    ExitWithParent.serveUntilStopped(server, exitWithParent, "echo-server-shutdown");
    return 0;
  }
}
