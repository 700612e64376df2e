package io.grpcshm;

/** Which paths a channel may use. */
public enum TransportMode {
  /** Shared memory for co-located servers that offer it, stock Netty TCP for everything else. */
  AUTO,
  /** Shared memory only: calls fail with the handshake's status if it cannot be used. */
  SHM_ONLY,
  /** Stock Netty TCP only (for side-by-side comparisons). */
  TCP_ONLY
}
