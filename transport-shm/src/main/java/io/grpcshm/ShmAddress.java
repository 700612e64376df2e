package io.grpcshm;

import java.net.SocketAddress;
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

  /** The rendezvous name a server on TCP port {@code port} listens on by default. */
  public static String defaultRendezvous(int port) {
    return "@grpc-shm/" + port;
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
