package io.grpcshm.examples;

import io.grpc.ManagedChannel;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.examples.hello.GreeterGrpc;
import io.grpcshm.examples.hello.HelloReply;
import io.grpcshm.examples.hello.HelloRequest;
import java.util.concurrent.TimeUnit;

/**
 * The hello-world client. Usage: {@code HelloClient [target] [name] [AUTO|SHM_ONLY|TCP_ONLY]},
 * default {@code localhost:50051 world AUTO}. Prints the reply and the path the call took.
 */
public final class HelloClient {
  private HelloClient() {}

  /** What one call returned, and over which path it travelled. */
  record Greeting(String message, long serverPid, TransportPath path) {}

  public static void main(String[] args) throws InterruptedException {
    String target = args.length > 0 ? args[0] : "localhost:50051";
    String name = args.length > 1 ? args[1] : "world";
    TransportMode mode = args.length > 2 ? TransportMode.valueOf(args[2]) : TransportMode.AUTO;
    Greeting greeting = greet(target, name, mode);
    System.out.println(greeting.message() + "  (server pid " + greeting.serverPid()
        + ", client pid " + ProcessHandle.current().pid() + ", path " + greeting.path() + ")");
  }

  static Greeting greet(String target, String name, TransportMode mode)
      throws InterruptedException {
    TransportPathRecorder paths = new TransportPathRecorder();
    // Stock grpc:  ManagedChannelBuilder.forTarget(target).usePlaintext().build()
    ManagedChannel channel = ShmChannelBuilder.forTarget(target).usePlaintext()
        .transportMode(mode) // optional: AUTO (the default) picks shared memory when it can
        .intercept(paths)
        .build();
    try {
      HelloReply reply = GreeterGrpc.newBlockingStub(channel)
          .withDeadlineAfter(10, TimeUnit.SECONDS)
          .sayHello(HelloRequest.newBuilder().setName(name).build());
      return new Greeting(reply.getMessage(), reply.getServerPid(), paths.takeLast());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
