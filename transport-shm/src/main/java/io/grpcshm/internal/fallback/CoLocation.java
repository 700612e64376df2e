package io.grpcshm.internal.fallback;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.time.Duration;

/**
 * Decides whether an address belongs to this host: loopback, the wildcard address, or an address
 * of one of this host's interfaces. Interface look-ups are cached (interfaces change rarely).
 */
public final class CoLocation {
  private final Cache<InetAddress, Boolean> interfaceAddresses = Caffeine.newBuilder()
      .maximumSize(1024)
      .expireAfterWrite(Duration.ofSeconds(30))
      .build();

  public boolean isLocal(InetAddress address) {
    if (address == null) {
      return false;
    }
    if (address.isLoopbackAddress() || address.isAnyLocalAddress()) {
      return true;
    }
    return interfaceAddresses.get(address, CoLocation::isInterfaceAddress);
  }

  private static boolean isInterfaceAddress(InetAddress address) {
    try {
      return NetworkInterface.getByInetAddress(address) != null;
    } catch (SocketException e) {
      return false;
    }
  }
}
