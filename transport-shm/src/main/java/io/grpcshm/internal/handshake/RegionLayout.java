package io.grpcshm.internal.handshake;

import io.grpcshm.internal.ring.RingDescriptor;
import java.lang.foreign.MemorySegment;

/**
 * Where everything lives in a connection's shared region (one sealed memfd per connection,
 * created by the server; docs/PROTOCOL.md §4). The rings' data areas and the pools are
 * page-aligned; the region header and both rings' headers share the first page, so that setting
 * up a connection touches one page of the region on each side, not three (a first touch is a
 * page fault, tens of microseconds on a virtual machine):
 *
 * <pre>
 *   0                      region header: magic, version, sizes (informational; both sides use
 *                          the sizes from the handshake message, never these bytes)
 *   1024                   ring client-&gt;server header (RingDescriptor.HEADER_LENGTH bytes)
 *   2048                   ring server-&gt;client header
 *   PAGE                   ring client-&gt;server data (ringCapacity bytes)
 *   PAGE + ringCapacity    ring server-&gt;client data
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
  /** The client-&gt;server ring's header, in the first page. */
  public static final int CLIENT_TO_SERVER_RING_HEADER_OFFSET = 1024;
  /** The server-&gt;client ring's header, in the first page. */
  public static final int SERVER_TO_CLIENT_RING_HEADER_OFFSET = 2048;

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

  /** Where the client-&gt;server ring's data area starts (its header is in the first page). */
  public long clientToServerRingOffset() {
    return PAGE;
  }

  /** Where the server-&gt;client ring's data area starts. */
  public long serverToClientRingOffset() {
    return PAGE + (long) ringCapacity;
  }

  /** The header of the ring {@code clientToServer} picks, sliced from {@code region}. */
  public MemorySegment ringHeader(MemorySegment region, boolean clientToServer) {
    return region.asSlice(clientToServer ? CLIENT_TO_SERVER_RING_HEADER_OFFSET
        : SERVER_TO_CLIENT_RING_HEADER_OFFSET, RingDescriptor.HEADER_LENGTH);
  }

  /** The data area of the ring {@code clientToServer} picks, sliced from {@code region}. */
  public MemorySegment ringData(MemorySegment region, boolean clientToServer) {
    return region.asSlice(clientToServer ? clientToServerRingOffset() : serverToClientRingOffset(),
        ringCapacity);
  }

  public long clientToServerPoolOffset() {
    return PAGE + 2L * ringCapacity;
  }

  public long serverToClientPoolOffset() {
    return clientToServerPoolOffset() + poolSize;
  }

  public long totalSize() {
    return serverToClientPoolOffset() + poolSize;
  }
}
