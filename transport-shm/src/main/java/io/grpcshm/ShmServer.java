package io.grpcshm;

import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The server {@link ShmServerBuilder} builds: a stock Netty server on the TCP port plus a
 * shared-memory server on the rendezvous socket derived from that port. Both share services,
 * interceptors and executors; lifecycle calls go to both.
 */
final class ShmServer extends Server {
  private static final Logger log = Logger.getLogger(ShmServer.class.getName());
  private final Server tcp;
  private final Function<InetSocketAddress, Server> shmFactory;
  private volatile Server shm;

  ShmServer(Server tcp, Function<InetSocketAddress, Server> shmFactory) {
    this.tcp = tcp;
    this.shmFactory = shmFactory;
  }

  @Override
  public Server start() throws IOException {
    tcp.start();
    // The rendezvous name derives from the bound address and port, known only now (port 0 =
    // ephemeral): the shm listener stands in for exactly what the TCP listener serves.
    InetSocketAddress bound = null;
    for (SocketAddress a : tcp.getListenSockets()) {
      if (a instanceof InetSocketAddress inet && inet.getAddress() != null) {
        bound = inet;
        break;
      }
    }
    if (bound == null) {
      bound = new InetSocketAddress(tcp.getPort());
    }
    Server candidate = shmFactory.apply(bound);
    try {
      candidate.start();
      shm = candidate;
    } catch (IOException e) {
      log.log(Level.WARNING, "shared-memory listener not started, serving TCP only: "
          + e.getMessage());
    }
    return this;
  }

  @Override
  public int getPort() {
    return tcp.getPort();
  }

  @Override
  public List<? extends SocketAddress> getListenSockets() {
    List<SocketAddress> all = new ArrayList<>(tcp.getListenSockets());
    Server s = shm;
    if (s != null) {
      all.addAll(s.getListenSockets());
    }
    return all;
  }

  @Override
  public List<ServerServiceDefinition> getServices() {
    return tcp.getServices();
  }

  @Override
  public List<ServerServiceDefinition> getImmutableServices() {
    return tcp.getImmutableServices();
  }

  @Override
  public List<ServerServiceDefinition> getMutableServices() {
    return tcp.getMutableServices();
  }

  @Override
  public Server shutdown() {
    Server s = shm;
    if (s != null) {
      s.shutdown();
    }
    tcp.shutdown();
    return this;
  }

  @Override
  public Server shutdownNow() {
    Server s = shm;
    if (s != null) {
      s.shutdownNow();
    }
    tcp.shutdownNow();
    return this;
  }

  @Override
  public boolean isShutdown() {
    Server s = shm;
    return tcp.isShutdown() && (s == null || s.isShutdown());
  }

  @Override
  public boolean isTerminated() {
    Server s = shm;
    return tcp.isTerminated() && (s == null || s.isTerminated());
  }

  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    Server s = shm;
    if (s != null && !s.awaitTermination(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
      return false;
    }
    return tcp.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
  }

  @Override
  public void awaitTermination() throws InterruptedException {
    Server s = shm;
    if (s != null) {
      s.awaitTermination();
    }
    tcp.awaitTermination();
  }

  @Override
  public String toString() {
    return "ShmServer{tcp=" + tcp + ", shm=" + shm + "}";
  }
}
