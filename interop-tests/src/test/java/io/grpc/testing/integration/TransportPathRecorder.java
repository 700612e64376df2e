package io.grpc.testing.integration;

import static org.junit.Assert.assertEquals;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Records which path every call that reached a transport took, so each interop test can assert
 * that it really ran over shared memory (or really fell back to TCP).
 */
final class TransportPathRecorder implements ClientInterceptor {
  private final Set<TransportPath> seen = ConcurrentHashMap.newKeySet();

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(
      MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
      @Override
      public void start(Listener<R> listener, Metadata headers) {
        ClientCall<Q, R> call = delegate();
        super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
          @Override
          public void onClose(Status status, Metadata trailers) {
            record(call);
            super.onClose(status, trailers);
          }
        }, headers);
      }
    };
  }

  private void record(ClientCall<?, ?> call) {
    io.grpc.Attributes attrs = call.getAttributes();
    if (attrs.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR) != null) {
      seen.add(TransportPath.of(attrs));
    }
  }

  /** Every call that reached a transport used {@code expected}. */
  void assertOnly(TransportPath expected) {
    if (!seen.isEmpty()) {
      assertEquals("transport paths used", EnumSet.of(expected), EnumSet.copyOf(seen));
    }
  }
}
