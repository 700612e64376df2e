package io.grpcshm.internal.handshake;

import io.grpcshm.ShmAddress;
import io.grpcshm.internal.fallback.CoLocation;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * The TCP address a shared-memory server stands in for (what its TCP listener is bound to): a
 * CLIENT_HELLO whose target this server would not receive over TCP is refused (PROTOCOL.md 3.3).
 * A specific bind serves exactly its address; a wildcard bind serves every address of this
 * network namespace on its port ({@code 0.0.0.0}: IPv4 addresses only; {@code ::}: both
 * families, as Linux's dual-stack sockets do).
 */
public record ServedAddress(InetSocketAddress bound) {
  private static final CoLocation LOCAL = new CoLocation();

  public ServedAddress {
    if (bound.getAddress() == null) {
      throw new IllegalArgumentException("unresolved bind address " + bound);
    }
  }

  /** Whether a TCP connection to {@code target:port} would reach the server bound here. */
  public boolean serves(InetAddress target, int port) {
    if (port != bound.getPort()) {
      return false;
    }
    InetAddress ip = bound.getAddress();
    if (!ip.isAnyLocalAddress()) {
      return ip.equals(target) || ShmAddress.canonical(ip).equals(ShmAddress.canonical(target));
    }
    if (ip instanceof Inet4Address && !(target instanceof Inet4Address)) {
      return false;
    }
    return LOCAL.isLocal(target);
  }

  /** The reason given to a client whose target this server does not serve. */
  public String refusal(InetAddress target, int port) {
    return "this server does not serve " + new InetSocketAddress(target, port)
        + " (it is bound to " + bound + ")";
  }
}
