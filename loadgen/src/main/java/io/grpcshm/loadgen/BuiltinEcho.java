package io.grpcshm.loadgen;

import com.google.protobuf.ByteString;
import io.grpc.BindableService;
import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.loadgen.echo.EchoGrpc;
import io.grpcshm.loadgen.echo.EchoRequest;
import io.grpcshm.loadgen.echo.EchoResponse;
import java.io.IOException;

/** The built-in echo service ({@code grpcshm.loadgen.Echo/Echo}) for compare and echo-server. */
final class BuiltinEcho extends EchoGrpc.EchoImplBase {
  static final String CALL = "grpcshm.loadgen.Echo/Echo";

  @Override
  public void echo(EchoRequest request, StreamObserver<EchoResponse> response) {
    ByteString payload = request.getPayload();
    int n = request.getResponseSize();
    if (n > 0) {
      payload = n <= payload.size() ? payload.substring(0, n)
          : payload.concat(ByteString.copyFrom(new byte[n - payload.size()]));
    }
    response.onNext(EchoResponse.newBuilder().setPayload(payload).build());
    response.onCompleted();
  }

  /** Reflection v1alpha, which older clients (grpcurl before 1.9, ghz) still ask. */
  @SuppressWarnings("deprecation")
  static BindableService reflection() {
    return ProtoReflectionService.newInstance();
  }

  /** Reflection v1, which current grpcurl, ghz and grpc-load ask first. */
  static BindableService reflectionV1() {
    return ProtoReflectionServiceV1.newInstance();
  }

  /** A grpc-shm server (TCP + shared memory) with the echo service and both reflections. */
  static Server start(int port) throws IOException {
    return start(port, false, new HealthStatusManager());
  }

  /**
   * The echo-server: echo service, reflection v1 and v1alpha, {@code grpc.health.v1.Health}
   * from {@code health} (the echo service and the server as a whole marked SERVING), and, if
   * {@code echoMetadata}, every call's request headers echoed as its response headers.
   */
  static Server start(int port, boolean echoMetadata, HealthStatusManager health)
      throws IOException {
    ShmServerBuilder builder = ShmServerBuilder.forPort(port)
        .addService(new BuiltinEcho())
        .addService(reflectionV1())
        .addService(reflection())
        .addService(health.getHealthService())
        .maxInboundMessageSize(Calls.MAX_MESSAGE_BYTES);
    if (echoMetadata) {
      builder.intercept(new MetadataEcho());
    }
    Server server = builder.build().start();
    health.setStatus(EchoGrpc.SERVICE_NAME, ServingStatus.SERVING);
    health.setStatus(HealthStatusManager.SERVICE_NAME_ALL_SERVICES, ServingStatus.SERVING);
    return server;
  }

  /**
   * Sends a call's request headers back as its response headers, so a client can check what
   * arrived. Headers gRPC itself sets (content-type, user-agent, te, grpc-*) are left out.
   */
  static final class MetadataEcho implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
        ServerCallHandler<Q, R> next) {
      Metadata echoed = echoable(headers);
      return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        @Override
        public void sendHeaders(Metadata responseHeaders) {
          responseHeaders.merge(echoed);
          super.sendHeaders(responseHeaders);
        }
      }, headers);
    }

    static Metadata echoable(Metadata headers) {
      Metadata echoed = new Metadata();
      for (String name : headers.keys()) {
        if (name.startsWith("grpc-") || name.startsWith(":") || name.equals("content-type")
            || name.equals("user-agent") || name.equals("te")) {
          continue;
        }
        if (name.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
          Metadata.Key<byte[]> key = Metadata.Key.of(name, Metadata.BINARY_BYTE_MARSHALLER);
          for (byte[] value : headers.getAll(key)) {
            echoed.put(key, value);
          }
        } else {
          Metadata.Key<String> key = Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER);
          for (String value : headers.getAll(key)) {
            echoed.put(key, value);
          }
        }
      }
      return echoed;
    }
  }
}
