package io.grpcshm;

import io.grpc.Status;

/**
 * Decides whether a local process may connect over shared memory, from the credentials the kernel
 * reports for the peer socket (SO_PEERCRED). A refused peer gets PERMISSION_DENIED and nothing is
 * mapped for it. The same interface lets a client check which user runs the server.
 *
 * <p>A server asks its policy on its accept thread, right after accepting a connection and
 * before reading anything from it, so a policy must be fast and must not block: a slow one delays
 * every other connection. A policy that throws refuses the peer.
 */
@FunctionalInterface
public interface PeerAuthorizationPolicy {
  /** Returns {@link Status#OK} to admit the peer, or the status to refuse it with. */
  Status check(int pid, int uid, int gid);

  /** The default: the peer must run as the same user as this process. */
  static PeerAuthorizationPolicy sameUser() {
    String noNative = io.grpcshm.internal.nativeio.NativeAccess.unavailableReason();
    if (noNative != null) {
      // Shared memory is off in this process; nothing will ask (refuse if something does).
      return (pid, uid, gid) -> Status.PERMISSION_DENIED.withDescription(noNative);
    }
    int self = io.grpcshm.internal.nativeio.Linux.getuid();
    return (pid, uid, gid) -> uid == self
        ? Status.OK
        : Status.PERMISSION_DENIED.withDescription(
            "shared-memory peer pid " + pid + " runs as uid " + uid + ", only uid " + self
                + " is allowed");
  }

  /** Admits only the given uids. */
  static PeerAuthorizationPolicy uids(int... allowed) {
    int[] copy = allowed.clone();
    return (pid, uid, gid) -> {
      for (int a : copy) {
        if (a == uid) {
          return Status.OK;
        }
      }
      return Status.PERMISSION_DENIED.withDescription(
          "shared-memory peer uid " + uid + " is not in the allowed list");
    };
  }

  /** Admits every local process (use only when the host is single-tenant). */
  static PeerAuthorizationPolicy anyLocalUser() {
    return (pid, uid, gid) -> Status.OK;
  }
}
