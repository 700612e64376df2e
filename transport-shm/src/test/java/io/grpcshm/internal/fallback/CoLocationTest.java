package io.grpcshm.internal.fallback;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.NetworkInterface;
import java.util.Collections;
import org.junit.jupiter.api.Test;

class CoLocationTest {
  private final CoLocation coLocation = new CoLocation();

  @Test
  void loopbackAndWildcardAreLocal() throws Exception {
    assertTrue(coLocation.isLocal(InetAddress.getByName("127.0.0.1")));
    assertTrue(coLocation.isLocal(InetAddress.getByName("127.0.0.53")));
    assertTrue(coLocation.isLocal(InetAddress.getByName("::1")));
    assertTrue(coLocation.isLocal(InetAddress.getByName("0.0.0.0")));
  }

  @Test
  void thisHostsInterfaceAddressesAreLocal() throws Exception {
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      for (InetAddress a : Collections.list(nic.getInetAddresses())) {
        assertTrue(coLocation.isLocal(a), a.toString());
      }
    }
  }

  @Test
  void otherAddressesAreRemote() throws Exception {
    // TEST-NET-3 (RFC 5737) and documentation IPv6 (RFC 3849) are never assigned to a host.
    assertFalse(coLocation.isLocal(InetAddress.getByName("203.0.113.7")));
    assertFalse(coLocation.isLocal(InetAddress.getByName("2001:db8::1")));
    assertFalse(coLocation.isLocal(null));
  }
}
