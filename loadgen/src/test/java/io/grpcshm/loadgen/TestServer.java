package io.grpcshm.loadgen;

import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportPath;
import io.grpcshm.loadgen.testing.GreeterGrpc;
import io.grpcshm.loadgen.testing.HelloReply;
import io.grpcshm.loadgen.testing.HelloRequest;
import java.io.IOException;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/** A grpc-shm server with the test Greeter and server reflection, on an ephemeral port. */
final class TestServer implements AutoCloseable {
  static final String CALL = "loadgen.test.Greeter/SayHello";
  static final Metadata.Key<String> TAG = Metadata.Key.of("x-tag", Metadata.ASCII_STRING_MARSHALLER);

  final Queue<String> names = new ConcurrentLinkedQueue<>();
  final Queue<String> tags = new ConcurrentLinkedQueue<>();
  final ConcurrentHashMap<TransportPath, AtomicLong> serverPaths = new ConcurrentHashMap<>();
  final Server server;

  TestServer() throws IOException {
    ServerInterceptor recorder = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        String tag = headers.get(TAG);
        if (tag != null) {
          tags.add(tag);
        }
        serverPaths.computeIfAbsent(TransportPath.of(call.getAttributes()),
            k -> new AtomicLong()).incrementAndGet();
        return next.startCall(call, headers);
      }
    };
    server = ShmServerBuilder.forPort(0)
        .addService(ServerInterceptors.intercept(new Greeter(), recorder))
        .addService(BuiltinEcho.reflection())
        .build().start();
  }

  String target() {
    return "localhost:" + server.getPort();
  }

  @Override
  public void close() {
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private final class Greeter extends GreeterGrpc.GreeterImplBase {
    @Override
    public void sayHello(HelloRequest req, StreamObserver<HelloReply> out) {
      names.add(req.getName());
      if (req.getSleepMicros() > 0) {
        try {
          TimeUnit.MICROSECONDS.sleep(req.getSleepMicros());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      if (req.getFailCode() != 0) {
        out.onError(Status.fromCodeValue(req.getFailCode()).withDescription("asked to fail")
            .asRuntimeException());
        return;
      }
      out.onNext(HelloReply.newBuilder().setMessage("Hello " + req.getName()).build());
      out.onCompleted();
    }
  }
}
