package io.grpcshm;

import com.google.common.net.InetAddresses;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Objects;

/**
 * The address of a shared-memory endpoint: the rendezvous socket name (abstract names start with
 * {@code '@'}) and, for a connected peer, its process id and user id as the kernel reported them.
 */
public final class ShmAddress extends SocketAddress {
  private static final long serialVersionUID = 1L;
  private final String rendezvous;
  private final int pid;
  private final int uid;

  public ShmAddress(String rendezvous, int pid, int uid) {
    this.rendezvous = Objects.requireNonNull(rendezvous, "rendezvous");
    this.pid = pid;
    this.uid = uid;
  }

  /** The listening name of a server, with no peer process. */
  public static ShmAddress listening(String rendezvous) {
    return new ShmAddress(rendezvous, -1, -1);
  }

  /**
   * The rendezvous name a server bound to the wildcard address on TCP port {@code port} listens
   * on by default: {@code @grpc-shm/*}{@code /<port>}. (A server bound to a specific address
   * listens on {@link #rendezvousFor}.)
   */
  public static String defaultRendezvous(int port) {
    return "@grpc-shm/*/" + port;
  }

  /**
   * The rendezvous name of a server bound to {@code bound}: {@code @grpc-shm/<ip>/<port>} for a
   * specific address ({@code <ip>} in canonical text form: dotted IPv4, RFC 5952 IPv6 without
   * brackets or scope), {@link #defaultRendezvous} for a wildcard bind.
   */
  public static String rendezvousFor(InetSocketAddress bound) {
    InetAddress ip = bound.getAddress();
    if (ip == null || ip.isAnyLocalAddress()) {
      return defaultRendezvous(bound.getPort());
    }
    return "@grpc-shm/" + canonical(ip) + "/" + bound.getPort();
  }

  /**
   * The names a client aiming at local address {@code target} tries, in order: the server bound
   * to exactly that address, then a server bound to the wildcard address on that port.
   */
  public static List<String> clientRendezvous(InetSocketAddress target) {
    return List.of(rendezvousFor(target), defaultRendezvous(target.getPort()));
  }

  /**
   * The path socket a server bound to {@code address} publishes in a node-local rendezvous
   * directory, and a client aiming at {@code address} from another network namespace connects
   * to: {@code <dir>/<ip>_<port>.sock} ({@code <ip>} canonical as in {@link #rendezvousFor}).
   * The file name is the address; nothing else is published.
   */
  public static String directoryRendezvous(java.nio.file.Path dir, InetSocketAddress address) {
    return dir.resolve(canonical(address.getAddress()) + "_" + address.getPort() + ".sock")
        .toString();
  }

  /**
   * The node-local rendezvous directory configured for this process, or null: the system
   * property {@code io.grpcshm.rendezvousDirectory}, else the environment variable
   * {@code GRPC_SHM_DIR} (an empty value means none). Both builders start from it.
   */
  public static java.nio.file.Path configuredDirectory() {
    String dir = System.getProperty("io.grpcshm.rendezvousDirectory");
    if (dir == null) {
      dir = System.getenv("GRPC_SHM_DIR");
    }
    return dir == null || dir.isBlank() ? null : java.nio.file.Path.of(dir.strip());
  }

  /** The canonical text form of an address: no host name, no scope, IPv6 compressed. */
  public static String canonical(InetAddress ip) {
    try {
      return InetAddresses.toAddrString(InetAddress.getByAddress(ip.getAddress()));
    } catch (UnknownHostException e) {
      throw new AssertionError(e);
    }
  }

  /**
   * Where a TCP connection to {@code target} would go: the wildcard address stands for loopback
   * of its family (Linux connects to 127.0.0.1 or ::1); other addresses are kept as they are.
   */
  public static InetSocketAddress effectiveTarget(InetSocketAddress target) {
    InetAddress ip = target.getAddress();
    if (ip != null && ip.isAnyLocalAddress()) {
      InetAddress loopback = ip instanceof Inet4Address
          ? InetAddresses.forString("127.0.0.1") : InetAddresses.forString("::1");
      return new InetSocketAddress(loopback, target.getPort());
    }
    return target;
  }

  public String rendezvous() {
    return rendezvous;
  }

  /** Peer process id, or -1 for a listening address. */
  public int pid() {
    return pid;
  }

  /** Peer user id, or -1 for a listening address. */
  public int uid() {
    return uid;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ShmAddress a
        && a.rendezvous.equals(rendezvous) && a.pid == pid && a.uid == uid;
  }

  @Override
  public int hashCode() {
    return Objects.hash(rendezvous, pid, uid);
  }

  @Override
  public String toString() {
    return pid < 0 ? "shm:" + rendezvous : "shm:" + rendezvous + "[pid=" + pid + ",uid=" + uid + "]";
  }
}
