package io.grpcshm.examples;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpcshm.TransportPath;

/**
 * Remembers which path the latest call on a channel took. Stubs hide the {@code ClientCall}, so
 * an interceptor is the way to read {@code TransportPath.of(call.getAttributes())} for them; the
 * attributes are complete once response headers arrive.
 */
final class TransportPathRecorder implements ClientInterceptor {
  private volatile TransportPath last;

  /** The path of the latest call that received headers, cleared by this read (null if none). */
  TransportPath takeLast() {
    TransportPath path = last;
    last = null;
    return path;
  }

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method,
      CallOptions options, Channel next) {
    return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
      @Override
      public void start(Listener<R> listener, Metadata headers) {
        ClientCall<Q, R> call = this;
        super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
          @Override
          public void onHeaders(Metadata responseHeaders) {
            last = TransportPath.of(call.getAttributes());
            super.onHeaders(responseHeaders);
          }
        }, headers);
      }
    };
  }
}
