package io.grpcshm;

import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketAddress;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
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
  private final BiFunction<InetSocketAddress, String, Server> shmFactory;
  private final String fixedRendezvous;
  private final Path directory;
  /** The shm listeners started: the abstract rendezvous, then those in the directory. */
  private final List<Server> shms = new CopyOnWriteArrayList<>();

  /**
   * {@code shmFactory} builds a shared-memory server standing in for the TCP listener bound to
   * its first argument on the rendezvous named by its second; {@code fixedRendezvous} (null:
   * derived from the bound address) and {@code directory} (null: none) as on the builder.
   */
  ShmServer(Server tcp, BiFunction<InetSocketAddress, String, Server> shmFactory,
      String fixedRendezvous, Path directory) {
    this.tcp = tcp;
    this.shmFactory = shmFactory;
    this.fixedRendezvous = fixedRendezvous;
    this.directory = directory;
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
    String name = fixedRendezvous != null ? fixedRendezvous : ShmAddress.rendezvousFor(bound);
    startShm(bound, name, "shared-memory listener not started, serving TCP only: ");
    if (directory != null) {
      if (!Files.isDirectory(directory)) {
        log.warning("shared-memory rendezvous directory " + directory + " does not exist:"
            + " clients in other network namespaces will use TCP");
      } else {
        for (InetSocketAddress published : publishedAddresses(bound)) {
          startShm(bound, ShmAddress.directoryRendezvous(directory, published),
              "not published in the rendezvous directory (clients in other network"
                  + " namespaces will use TCP): ");
        }
      }
    }
    return this;
  }

  private void startShm(InetSocketAddress bound, String name, String failure) {
    try {
      Server candidate = shmFactory.apply(bound, name);
      candidate.start();
      shms.add(candidate);
    } catch (IOException | RuntimeException e) {
      log.log(Level.WARNING, failure + e.getMessage());
    }
  }

  /**
   * The addresses published in the directory: the bound address, or for a wildcard bind every
   * address of this network namespace's interfaces at start (IPv4 only for {@code 0.0.0.0}),
   * except loopback and link-local ones, which another namespace never reaches as ours.
   */
  static List<InetSocketAddress> publishedAddresses(InetSocketAddress bound) {
    InetAddress ip = bound.getAddress();
    if (!ip.isAnyLocalAddress()) {
      return ip.isLoopbackAddress() ? List.of() : List.of(bound);
    }
    Set<InetSocketAddress> out = new LinkedHashSet<>();
    try {
      for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        if (!nif.isUp()) {
          continue;
        }
        for (InetAddress a : Collections.list(nif.getInetAddresses())) {
          if (a.isLoopbackAddress() || a.isLinkLocalAddress()
              || (ip instanceof Inet4Address && !(a instanceof Inet4Address))) {
            continue;
          }
          out.add(new InetSocketAddress(a, bound.getPort()));
        }
      }
    } catch (SocketException e) {
      log.warning("cannot list this namespace's addresses, nothing published: " + e);
    }
    return List.copyOf(out);
  }

  @Override
  public int getPort() {
    return tcp.getPort();
  }

  @Override
  public List<? extends SocketAddress> getListenSockets() {
    List<SocketAddress> all = new ArrayList<>(tcp.getListenSockets());
    for (Server s : shms) {
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
    for (Server s : shms) {
      s.shutdown();
    }
    tcp.shutdown();
    return this;
  }

  @Override
  public Server shutdownNow() {
    for (Server s : shms) {
      s.shutdownNow();
    }
    tcp.shutdownNow();
    return this;
  }

  @Override
  public boolean isShutdown() {
    return tcp.isShutdown() && shms.stream().allMatch(Server::isShutdown);
  }

  @Override
  public boolean isTerminated() {
    return tcp.isTerminated() && shms.stream().allMatch(Server::isTerminated);
  }

  @Override
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    for (Server s : shms) {
      if (!s.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
        return false;
      }
    }
    return tcp.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
  }

  @Override
  public void awaitTermination() throws InterruptedException {
    for (Server s : shms) {
      s.awaitTermination();
    }
    tcp.awaitTermination();
  }

  @Override
  public String toString() {
    return "ShmServer{tcp=" + tcp + ", shm=" + shms + "}";
  }
}
