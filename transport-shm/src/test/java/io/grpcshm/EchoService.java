package io.grpcshm;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import io.grpcshm.hardening.Hardening;
import java.util.concurrent.atomic.AtomicReference;

/** A byte[] echo service with all four call types, for transport tests. */
final class EchoService {
  private EchoService() {}

  static final String SERVICE = "grpcshm.test.Echo";

  static final MethodDescriptor.Marshaller<byte[]> BYTES = Hardening.BYTES;

  static final MethodDescriptor<byte[], byte[]> UNARY = method("Unary", MethodDescriptor.MethodType.UNARY);
  static final MethodDescriptor<byte[], byte[]> SERVER_STREAM =
      method("ServerStream", MethodDescriptor.MethodType.SERVER_STREAMING);
  static final MethodDescriptor<byte[], byte[]> CLIENT_STREAM =
      method("ClientStream", MethodDescriptor.MethodType.CLIENT_STREAMING);
  static final MethodDescriptor<byte[], byte[]> BIDI =
      method("Bidi", MethodDescriptor.MethodType.BIDI_STREAMING);

  private static MethodDescriptor<byte[], byte[]> method(String name,
      MethodDescriptor.MethodType type) {
    return MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(type)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name))
        .setRequestMarshaller(BYTES)
        .setResponseMarshaller(BYTES)
        .build();
  }

  /** Unary echoes; server stream sends the request back N times (N = first byte); client stream
   * returns the concatenation; bidi echoes each message. */
  static ServerServiceDefinition definition() {
    return ServerServiceDefinition.builder(SERVICE)
        .addMethod(UNARY, ServerCalls.asyncUnaryCall((req, obs) -> {
          obs.onNext(req);
          obs.onCompleted();
        }))
        .addMethod(SERVER_STREAM, ServerCalls.asyncServerStreamingCall((req, obs) -> {
          int n = req.length == 0 ? 0 : req[0] & 0xff;
          for (int i = 0; i < n; i++) {
            obs.onNext(req);
          }
          obs.onCompleted();
        }))
        .addMethod(CLIENT_STREAM, ServerCalls.asyncClientStreamingCall(obs ->
            new StreamObserver<byte[]>() {
              final java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();

              @Override
              public void onNext(byte[] value) {
                all.writeBytes(value);
              }

              @Override
              public void onError(Throwable t) {}

              @Override
              public void onCompleted() {
                obs.onNext(all.toByteArray());
                obs.onCompleted();
              }
            }))
        .addMethod(BIDI, ServerCalls.asyncBidiStreamingCall(obs -> new StreamObserver<byte[]>() {
          @Override
          public void onNext(byte[] value) {
            obs.onNext(value);
          }

          @Override
          public void onError(Throwable t) {}

          @Override
          public void onCompleted() {
            obs.onCompleted();
          }
        }))
        .build();
  }

  /** Records the attributes of the last call made through it. */
  static final class AttributeCapture implements ClientInterceptor {
    final AtomicReference<io.grpc.Attributes> last = new AtomicReference<>();

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method,
        CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          super.start(new io.grpc.ForwardingClientCallListener.SimpleForwardingClientCallListener<>(
              listener) {
            @Override
            public void onHeaders(Metadata h) {
              last.set(getAttributes());
              super.onHeaders(h);
            }
          }, headers);
        }
      };
    }
  }
}
