package io.grpcshm.internal.fallback;

import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalLogId;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.internal.ClientStream;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.DisconnectError;
import java.util.concurrent.Executor;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Tries a shared-memory transport first; if its handshake fails before it is ready (no shm
 * server on that port, a stock grpc server, a refused handshake), starts a stock TCP transport in
 * its place with the same listener, so the channel never notices. After the decision every call
 * goes to the chosen transport.
 */
final class FallbackClientTransport implements ConnectionClientTransport {
  private final ConnectionClientTransport shm;
  private final Supplier<ConnectionClientTransport> tcpFactory;
  private final Consumer<Status> onFallback;
  private final Object lock = new Object();
  private volatile ConnectionClientTransport active;
  private boolean shutdownRequested;
  private boolean fellBack;

  FallbackClientTransport(ConnectionClientTransport shm,
      Supplier<ConnectionClientTransport> tcpFactory, Consumer<Status> onFallback) {
    this.shm = shm;
    this.tcpFactory = tcpFactory;
    this.onFallback = onFallback;
  }

  private ConnectionClientTransport current() {
    ConnectionClientTransport a = active;
    return a != null ? a : shm;
  }

  @Override
  public Runnable start(Listener listener) {
    return shm.start(new Listener() {
      @Override
      public void transportShutdown(Status s, DisconnectError e) {
        ConnectionClientTransport tcp = null;
        synchronized (lock) {
          if (active == null && !shutdownRequested && !fellBack) {
            fellBack = true;
            tcp = tcpFactory.get();
            active = tcp;
          }
        }
        if (tcp == null) {
          listener.transportShutdown(s, e);
          return;
        }
        onFallback.accept(s);
        Runnable r = tcp.start(listener);
        if (r != null) {
          r.run();
        }
      }

      @Override
      public void transportTerminated() {
        synchronized (lock) {
          if (fellBack) {
            return; // the TCP transport reports its own termination
          }
        }
        listener.transportTerminated();
      }

      @Override
      public void transportReady() {
        synchronized (lock) {
          active = shm;
        }
        listener.transportReady();
      }

      @Override
      public void transportInUse(boolean inUse) {
        listener.transportInUse(inUse);
      }

      @Override
      public Attributes filterTransport(Attributes attributes) {
        return listener.filterTransport(attributes);
      }
    });
  }

  @Override
  public ClientStream newStream(MethodDescriptor<?, ?> method, Metadata headers,
      CallOptions callOptions, ClientStreamTracer[] tracers) {
    return current().newStream(method, headers, callOptions, tracers);
  }

  @Override
  public void ping(PingCallback callback, Executor executor) {
    current().ping(callback, executor);
  }

  @Override
  public void shutdown(Status reason) {
    synchronized (lock) {
      shutdownRequested = true;
    }
    current().shutdown(reason);
  }

  @Override
  public void shutdownNow(Status reason) {
    synchronized (lock) {
      shutdownRequested = true;
    }
    current().shutdownNow(reason);
  }

  @Override
  public Attributes getAttributes() {
    return current().getAttributes();
  }

  @Override
  public InternalLogId getLogId() {
    return shm.getLogId();
  }

  @Override
  public ListenableFuture<SocketStats> getStats() {
    return current().getStats();
  }

  @Override
  public String toString() {
    return "FallbackClientTransport{" + current() + "}";
  }
}
