package io.grpcshm.loadgen;

import com.google.protobuf.ByteString;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.protobuf.services.ProtoReflectionService;
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

  /** Reflection (v1alpha), so grpc-load finds the descriptors with no --protoset. */
  @SuppressWarnings("deprecation")
  static BindableService reflection() {
    return ProtoReflectionService.newInstance();
  }

  /** A grpc-shm server (TCP + shared memory) with the echo service and reflection. */
  static Server start(int port) throws IOException {
    return ShmServerBuilder.forPort(port).addService(new BuiltinEcho()).addService(reflection())
        .maxInboundMessageSize(Calls.MAX_MESSAGE_BYTES).build().start();
  }
}
