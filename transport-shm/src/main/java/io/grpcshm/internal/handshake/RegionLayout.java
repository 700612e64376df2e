package io.grpcshm.internal.handshake;

import io.grpcshm.internal.ring.RingDescriptor;

/**
 * Where everything lives in a connection's shared region (one sealed memfd per connection,
 * created by the server). All parts are page-aligned:
 *
 * <pre>
 *   0                      header page: magic, version, sizes (informational; both sides use the
 *                          sizes from the handshake message, never these bytes)
 *   PAGE                   ring client-&gt;server (RingDescriptor header + ringCapacity)
 *   ..                     ring server-&gt;client
 *   ..                     pool client-&gt;server (poolSize bytes, written only by the client)
 *   ..                     pool server-&gt;client (poolSize bytes, written only by the server)
 * </pre>
 */
public record RegionLayout(int ringCapacity, long poolSize) {
  public static final int PAGE = 4096;
  public static final long MAGIC = 0x314d48535f435052L; // "RPC_SHM1" little-endian
  public static final int HEADER_MAGIC_OFFSET = 0;
  public static final int HEADER_VERSION_OFFSET = 8;
  public static final int HEADER_RING_CAPACITY_OFFSET = 12;
  public static final int HEADER_POOL_SIZE_OFFSET = 16;
  public static final int HEADER_REGION_SIZE_OFFSET = 24;

  /**
   * Smallest ring a connection uses: a quarter of it (the largest record) must hold any control
   * frame, e.g. a RST_STREAM with its 8 KiB description.
   */
  public static final int MIN_RING_CAPACITY = 1 << 16;

  /** Largest pool we accept from a peer (bounds what a hostile handshake can make us map). */
  public static final long MAX_POOL_SIZE = 1L << 34;

  public RegionLayout {
    if (!RingDescriptor.isValidCapacity(ringCapacity) || ringCapacity < MIN_RING_CAPACITY) {
      throw new IllegalArgumentException("ring capacity must be a power of two >= "
          + MIN_RING_CAPACITY + ": " + ringCapacity);
    }
    if (poolSize < PAGE || poolSize > MAX_POOL_SIZE || poolSize % PAGE != 0) {
      throw new IllegalArgumentException("pool size must be a multiple of " + PAGE
          + " between " + PAGE + " and " + MAX_POOL_SIZE + ": " + poolSize);
    }
  }

  private static long pageAlign(long n) {
    return (n + PAGE - 1) & -PAGE;
  }

  public long ringLength() {
    return pageAlign(RingDescriptor.totalLength(ringCapacity));
  }

  public long clientToServerRingOffset() {
    return PAGE;
  }

  public long serverToClientRingOffset() {
    return PAGE + ringLength();
  }

  public long clientToServerPoolOffset() {
    return PAGE + 2 * ringLength();
  }

  public long serverToClientPoolOffset() {
    return clientToServerPoolOffset() + poolSize;
  }

  public long totalSize() {
    return serverToClientPoolOffset() + poolSize;
  }
}
