package io.grpcshm.loadgen;

import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
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

  /** Server-streaming calls that ended by the client's cancellation. */
  final AtomicLong serverStreamsCancelled = new AtomicLong();
  /** Messages received on client-streaming and bidi calls. */
  final AtomicLong streamedIn = new AtomicLong();
  /** CollectHellos replies, one per client-streaming call. */
  final Queue<String> collected = new ConcurrentLinkedQueue<>();

  private final class Greeter extends GreeterGrpc.GreeterImplBase {
    @Override
    public StreamObserver<HelloRequest> collectHellos(StreamObserver<HelloReply> out) {
      return new StreamObserver<>() {
        final StringBuilder all = new StringBuilder();

        @Override
        public void onNext(HelloRequest req) {
          streamedIn.incrementAndGet();
          names.add(req.getName());
          all.append(all.isEmpty() ? "" : ",").append(req.getName());
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          collected.add(all.toString());
          out.onNext(HelloReply.newBuilder().setMessage(all.toString()).build());
          out.onCompleted();
        }
      };
    }

    @Override
    public void streamHellos(HelloRequest req, StreamObserver<HelloReply> out) {
      ServerCallStreamObserver<HelloReply> call = (ServerCallStreamObserver<HelloReply>) out;
      names.add(req.getName());
      for (int i = 0; i < req.getNumber(); i++) {
        if (req.getSleepMicros() > 0) {
          try {
            TimeUnit.MICROSECONDS.sleep(req.getSleepMicros());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
        if (call.isCancelled()) {
          serverStreamsCancelled.incrementAndGet();
          return;
        }
        out.onNext(HelloReply.newBuilder().setMessage(req.getName() + "-" + i).build());
      }
      out.onCompleted();
    }

    @Override
    public StreamObserver<HelloRequest> chatHellos(StreamObserver<HelloReply> out) {
      return new StreamObserver<>() {
        @Override
        public void onNext(HelloRequest req) {
          streamedIn.incrementAndGet();
          names.add(req.getName());
          out.onNext(HelloReply.newBuilder().setMessage("Hello " + req.getName()).build());
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          out.onCompleted();
        }
      };
    }

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
