package io.grpcshm.internal.transport;

import io.grpc.InternalChannelz.OtherSecurity;
import io.grpc.InternalChannelz.Security;
import io.grpc.InternalChannelz.SocketOptions;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalChannelz.TransportStats;
import io.grpcshm.DataMovement;
import io.grpcshm.dsa.MoverKind;
import java.net.SocketAddress;
import java.util.Locale;
import java.util.Map;

/**
 * What grpc's channelz shows of a shared-memory connection or listener: grpc's transport counters,
 * the rendezvous addresses, the peer's kernel credentials as security, and in the socket options
 * (channelz's "other" data) our own counters: payload bytes each way and the data movers'.
 */
final class ShmSocketStats {
  /** The name of the security a shared-memory socket has: the kernel's word on the peer. */
  static final String SECURITY_NAME = "grpc-shm SO_PEERCRED";

  private static final boolean PROTOBUF_PRESENT = classPresent("com.google.protobuf.Any");

  private ShmSocketStats() {}

  /**
   * A connection's stats. {@code peerPid}/{@code peerUid} are -1 before the handshake told them;
   * {@code movement}'s counters are those of the channel or server (all its connections).
   */
  static SocketStats connection(TransportStats data, SocketAddress local, SocketAddress remote,
      String rendezvous, int peerPid, int peerUid, long bytesSent, long bytesReceived,
      DataMovement movement) {
    SocketOptions.Builder options = new SocketOptions.Builder()
        .addOption("shm.rendezvous", rendezvous)
        .addOption("shm.data_bytes_sent", Long.toString(bytesSent))
        .addOption("shm.data_bytes_received", Long.toString(bytesReceived));
    Security security = null;
    if (peerUid >= 0) {
      options.addOption("shm.peer_pid", peerPid).addOption("shm.peer_uid", peerUid);
      security = new Security(new OtherSecurity(SECURITY_NAME,
          PROTOBUF_PRESENT ? PeerCredentialsAny.of(peerPid, peerUid) : null));
    }
    for (Map.Entry<MoverKind, DataMovement.MoverCounters> e : movement.counters().entrySet()) {
      DataMovement.MoverCounters c = e.getValue();
      options.addOption("shm.movement." + e.getKey().name().toLowerCase(Locale.ROOT),
          "moves=" + c.moves() + " bytes=" + c.bytes() + " micros=" + c.totalMicros()
              + " cpu_fallbacks=" + c.cpuFallbacks());
    }
    return new SocketStats(data, local, remote, options.build(), security);
  }

  /** A listening socket's stats: its address and how many connections it established. */
  static SocketStats listener(SocketAddress local, long established, long refused) {
    SocketOptions options = new SocketOptions.Builder()
        .addOption("shm.connections_established", Long.toString(established))
        .addOption("shm.connections_refused", Long.toString(refused))
        .build();
    return new SocketStats(null, local, null, options, null);
  }

  private static boolean classPresent(String name) {
    try {
      Class.forName(name, false, ShmSocketStats.class.getClassLoader());
      return true;
    } catch (ClassNotFoundException | LinkageError e) {
      return false;
    }
  }

  /**
   * The peer's credentials as a {@code google.protobuf.Any} holding a {@code Struct}, which
   * channelz clients print without our types. Loaded only when protobuf is on the class path
   * (always so where grpc's channelz service runs; protobuf is an optional dependency here).
   */
  private static final class PeerCredentialsAny {
    static Object of(int pid, int uid) {
      return com.google.protobuf.Any.pack(com.google.protobuf.Struct.newBuilder()
          .putFields("pid", number(pid))
          .putFields("uid", number(uid))
          .build());
    }

    private static com.google.protobuf.Value number(int n) {
      return com.google.protobuf.Value.newBuilder().setNumberValue(n).build();
    }
  }
}
