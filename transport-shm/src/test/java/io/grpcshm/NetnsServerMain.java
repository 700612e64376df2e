package io.grpcshm;

import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ServerCalls;
import io.grpcshm.childjvm.ChildJvm;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A server process for {@link NetnsTest}, run inside a network namespace: args {@code bindIp port
 * name directory|- shm|tcp}. Answers {@link #WHO} with its name; {@link #HANG} never answers.
 * Prints PORT n; exits when stdin closes.
 */
public final class NetnsServerMain {
  static final MethodDescriptor<byte[], byte[]> WHO = method("Name");
  static final MethodDescriptor<byte[], byte[]> HANG = method("Hang");

  private NetnsServerMain() {}

  private static MethodDescriptor<byte[], byte[]> method(String name) {
    return MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName(MethodDescriptor.generateFullMethodName("grpcshm.test.Who", name))
        .setRequestMarshaller(EchoService.BYTES)
        .setResponseMarshaller(EchoService.BYTES)
        .build();
  }

  public static void main(String[] args) throws Exception {
    InetSocketAddress bind = new InetSocketAddress(InetAddress.getByName(args[0]),
        Integer.parseInt(args[1]));
    byte[] answer = args[2].getBytes(StandardCharsets.UTF_8);
    ServerServiceDefinition who = ServerServiceDefinition.builder("grpcshm.test.Who")
        .addMethod(WHO, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(answer);
          obs.onCompleted();
        }))
        .addMethod(HANG, ServerCalls.asyncUnaryCall((req, obs) -> { }))
        .build();
    Server server = ShmServerBuilder.forAddress(bind)
        .rendezvousDirectory(args[3].equals("-") ? null : Path.of(args[3]))
        .sharedMemoryEnabled(args[4].equals("shm"))
        .addService(who)
        .addService(EchoService.definition()) // smoke calls: blocks, segments, streams
        .build()
        .start();
    ChildJvm.reportPortAndServe(server.getPort(),
        () -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
  }
}
