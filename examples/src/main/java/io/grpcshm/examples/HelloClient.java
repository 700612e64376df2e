package io.grpcshm.examples;

import io.grpc.ManagedChannel;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.examples.hello.GreeterGrpc;
import io.grpcshm.examples.hello.HelloReply;
import io.grpcshm.examples.hello.HelloRequest;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * The hello-world client. Usage: {@code HelloClient [target] [name] [AUTO|SHM_ONLY|TCP_ONLY]},
 * default {@code localhost:50051 world AUTO}. Prints the reply and the path the call took.
 */
@Command(name = "HelloClient", mixinStandardHelpOptions = true,
    description = "Says hello and prints the reply and the path the call took.")
public final class HelloClient implements Callable<Integer> {
  @Parameters(index = "0", defaultValue = "localhost:50051", paramLabel = "TARGET",
      description = "the server (${DEFAULT-VALUE})")
  String target;

  @Parameters(index = "1", defaultValue = "world", paramLabel = "NAME",
      description = "who to greet (${DEFAULT-VALUE})")
  String name;

  @Parameters(index = "2", defaultValue = "AUTO", paramLabel = "MODE",
      description = "${COMPLETION-CANDIDATES} (${DEFAULT-VALUE})")
  TransportMode mode;

  HelloClient() {}

  /** What one call returned, and over which path it travelled. */
  record Greeting(String message, long serverPid, TransportPath path) {}

  public static void main(String[] args) {
    Mains.run(new HelloClient(), args);
  }


  @Override
  public Integer call() throws InterruptedException {
    Greeting greeting = greet(target, name, mode);
    System.out.println(greeting.message() + "  (server pid " + greeting.serverPid()
        + ", client pid " + ProcessHandle.current().pid() + ", path " + greeting.path() + ")");
    return 0;
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
