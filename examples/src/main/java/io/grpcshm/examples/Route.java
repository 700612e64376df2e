package io.grpcshm.examples;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.stub.ClientCalls;
import io.grpcshm.TransportPath;
import java.util.concurrent.TimeUnit;

/**
 * One way of reaching the echo server (a channel and the path its calls must take), with a timed,
 * checked unary call. Every call has a deadline so a stuck transport fails the run instead of
 * hanging it.
 */
final class Route implements AutoCloseable {
  private static final long CALL_DEADLINE_SECONDS = 30;

  final String name;
  private final ManagedChannel channel;
  private final TransportPathRecorder paths;
  private final TransportPath expectedPath;

  /** {@code channel} must have been built with {@code paths} as an interceptor. */
  Route(String name, ManagedChannel channel, TransportPathRecorder paths,
      TransportPath expectedPath) {
    this.name = name;
    this.channel = channel;
    this.paths = paths;
    this.expectedPath = expectedPath;
  }

  /**
   * Makes one blocking call and returns its latency in nanoseconds; throws if the response is
   * wrong or the call took another path than expected.
   */
  long call(MethodDescriptor<byte[], byte[]> method, byte[] request, byte[] expectedAck) {
    CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(CALL_DEADLINE_SECONDS,
        TimeUnit.SECONDS);
    long start = System.nanoTime();
    byte[] response = ClientCalls.blockingUnaryCall(channel, method, options, request);
    long nanos = System.nanoTime() - start;
    if (!EchoService.isExpected(method, request, expectedAck, response)) {
      throw new IllegalStateException(name + ": wrong response to a " + request.length
          + "-byte request (" + response.length + " bytes)");
    }
    TransportPath path = paths.takeLast();
    if (path != expectedPath) {
      throw new IllegalStateException(name + ": call took path " + path + ", expected "
          + expectedPath);
    }
    return nanos;
  }

  @Override
  public void close() {
    try {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
