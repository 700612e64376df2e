package io.grpcshm.internal.transport;

import io.grpcshm.DataMovement;
import io.grpcshm.IdleStrategy;
import io.grpcshm.PeerAuthorizationPolicy;
import io.grpc.internal.GrpcUtil;
import java.util.Objects;

/**
 * Sizes and policies of shared-memory connections, shared by both builders.
 *
 * @param ringCapacity bytes of each direction's frame ring (power of two)
 * @param poolSize bytes of each direction's payload pool (pages are touched only when used)
 * @param maxSegmentBytes total bytes of extra persistent segments per direction, for payloads the
 *     pool cannot hold; beyond this, payloads travel inline through the ring in chunks
 * @param inlineThreshold payloads up to this size are copied through the ring instead of a block
 * @param streamWindow per-stream flow-control window in bytes
 * @param movement how large off-heap payloads are moved into shared memory
 * @param idleTrimMillis after this long without traffic a connection gives back the shared
 *     memory of its pool beyond {@link #RETAINED_POOL_BYTES} and of its idle extra segments
 *     (both processes' resident memory drops; the next large message touches pages again);
 *     0 never trims
 * @param maxConcurrentCallsPerConnection server only: streams one connection may have open at
 *     once; a REQUEST_HEADERS beyond it is refused with RST_STREAM(UNAVAILABLE) (PROTOCOL.md
 *     §8). The handshake has no field to announce it, so clients do not queue for it
 * @param maxConnectionsPerUid server only: connections (handshakes included) one peer uid may
 *     hold at once on this server; more are refused at accept with RESOURCE_EXHAUSTED
 */
public record ShmTransportConfig(
    int ringCapacity,
    long poolSize,
    long maxSegmentBytes,
    int inlineThreshold,
    int streamWindow,
    IdleStrategy idleStrategy,
    PeerAuthorizationPolicy peerPolicy,
    int maxInboundMessageSize,
    int maxInboundMetadataSize,
    long handshakeTimeoutMillis,
    DataMovement movement,
    long idleTrimMillis,
    int maxConcurrentCallsPerConnection,
    int maxConnectionsPerUid) {

  public static final int DEFAULT_RING_CAPACITY = 1 << 20;
  public static final long DEFAULT_POOL_SIZE = 256L << 20;
  public static final long DEFAULT_MAX_SEGMENT_BYTES = 4L << 30;
  public static final int DEFAULT_INLINE_THRESHOLD = 16 * 1024;
  public static final int DEFAULT_STREAM_WINDOW = 4 << 20;
  public static final long DEFAULT_IDLE_TRIM_MILLIS = 10_000;
  /**
   * Default bound on a connection's concurrent streams. An idle stream costs the server about
   * 2 KiB of heap (transport and gRPC call state, measured with the hardening service), so this
   * bounds one connection's idle streams to about 20 MiB; HTTP/2 servers commonly allow 100 to
   * unlimited, and local clients that multiplex many long-lived streams are legitimate.
   */
  public static final int DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION = 10_000;
  /**
   * Default bound on one uid's connections to one server: half of the process's default mapping
   * budget (each connection maps its region), so one uid can never take every connection the
   * process can hold, and well above the 10,000 idle connections one client process was
   * measured to keep (docs/BENCHMARKS.md).
   */
  public static final int DEFAULT_MAX_CONNECTIONS_PER_UID = 16_384;
  /** The start of the pool an idle connection keeps resident (small messages reuse it). */
  public static final long RETAINED_POOL_BYTES = 1 << 20;

  public ShmTransportConfig {
    Objects.requireNonNull(idleStrategy, "idleStrategy");
    Objects.requireNonNull(peerPolicy, "peerPolicy");
    Objects.requireNonNull(movement, "movement");
    if (!io.grpcshm.internal.ring.RingDescriptor.isValidCapacity(ringCapacity)
        || ringCapacity < io.grpcshm.internal.handshake.RegionLayout.MIN_RING_CAPACITY) {
      throw new IllegalArgumentException("ring capacity must be a power of two between "
          + io.grpcshm.internal.handshake.RegionLayout.MIN_RING_CAPACITY + " and "
          + io.grpcshm.internal.ring.RingDescriptor.MAX_CAPACITY + ": " + ringCapacity);
    }
    if (poolSize < 4096 || poolSize % 4096 != 0
        || poolSize > io.grpcshm.internal.handshake.RegionLayout.MAX_POOL_SIZE) {
      throw new IllegalArgumentException(
          "pool size must be a positive multiple of 4096 up to 16 GiB: " + poolSize);
    }
    if (maxSegmentBytes < 0) {
      throw new IllegalArgumentException("segment cap must not be negative: " + maxSegmentBytes);
    }
    if (inlineThreshold < 0 || inlineThreshold > ringCapacity / 8) {
      throw new IllegalArgumentException("inline threshold must be within 0.." + ringCapacity / 8);
    }
    if (streamWindow <= 0) {
      throw new IllegalArgumentException("stream window must be positive");
    }
    if (idleTrimMillis < 0) {
      throw new IllegalArgumentException("idle trim delay must not be negative");
    }
    if (maxConcurrentCallsPerConnection <= 0) {
      throw new IllegalArgumentException("max concurrent calls per connection must be positive: "
          + maxConcurrentCallsPerConnection);
    }
  }

  public static ShmTransportConfig defaults() {
    return new ShmTransportConfig(
        DEFAULT_RING_CAPACITY,
        DEFAULT_POOL_SIZE,
        DEFAULT_MAX_SEGMENT_BYTES,
        DEFAULT_INLINE_THRESHOLD,
        DEFAULT_STREAM_WINDOW,
        IdleStrategy.defaults(),
        PeerAuthorizationPolicy.sameUser(),
        GrpcUtil.DEFAULT_MAX_MESSAGE_SIZE,
        GrpcUtil.DEFAULT_MAX_HEADER_LIST_SIZE,
        5_000,
        DataMovement.defaults(),
        DEFAULT_IDLE_TRIM_MILLIS,
        DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION,
        DEFAULT_MAX_CONNECTIONS_PER_UID);
  }

  public ShmTransportConfig withMaxInboundMessageSize(int size) {
    return edit(b -> b.maxInboundMessageSize = size);
  }

  public ShmTransportConfig withMaxInboundMetadataSize(int size) {
    return edit(b -> b.maxInboundMetadataSize = size);
  }

  public ShmTransportConfig withIdleStrategy(IdleStrategy strategy) {
    return edit(b -> b.idleStrategy = strategy);
  }

  public ShmTransportConfig withPeerPolicy(PeerAuthorizationPolicy policy) {
    return edit(b -> b.peerPolicy = policy);
  }

  public ShmTransportConfig withSizes(int ringCapacity, long poolSize, long maxSegmentBytes) {
    return edit(b -> {
      b.ringCapacity = ringCapacity;
      b.poolSize = poolSize;
      b.maxSegmentBytes = maxSegmentBytes;
      b.inlineThreshold = Math.min(b.inlineThreshold, ringCapacity / 8);
    });
  }

  public ShmTransportConfig withMovement(DataMovement movement) {
    return edit(b -> b.movement = movement);
  }

  public ShmTransportConfig withStreamWindow(int window) {
    return edit(b -> b.streamWindow = window);
  }

  public ShmTransportConfig withIdleTrimMillis(long millis) {
    return edit(b -> b.idleTrimMillis = millis);
  }

  public ShmTransportConfig withHandshakeTimeoutMillis(long millis) {
    if (millis <= 0) {
      throw new IllegalArgumentException("handshake timeout must be positive: " + millis);
    }
    return edit(b -> b.handshakeTimeoutMillis = millis);
  }

  public ShmTransportConfig withMaxConnectionsPerUid(int connections) {
    if (connections <= 0) {
      throw new IllegalArgumentException("max must be positive: " + connections);
    }
    return edit(b -> b.maxConnectionsPerUid = connections);
  }

  public ShmTransportConfig withMaxConcurrentCallsPerConnection(int calls) {
    return edit(b -> b.maxConcurrentCallsPerConnection = calls);
  }

  /** A copy with some settings changed: the one place that lists every setting twice. */
  private ShmTransportConfig edit(java.util.function.Consumer<Editor> change) {
    Editor e = new Editor(this);
    change.accept(e);
    return new ShmTransportConfig(e.ringCapacity, e.poolSize, e.maxSegmentBytes,
        e.inlineThreshold, e.streamWindow, e.idleStrategy, e.peerPolicy, e.maxInboundMessageSize,
        e.maxInboundMetadataSize, e.handshakeTimeoutMillis, e.movement, e.idleTrimMillis,
        e.maxConcurrentCallsPerConnection, e.maxConnectionsPerUid);
  }

  private static final class Editor {
    int ringCapacity;
    long poolSize;
    long maxSegmentBytes;
    int inlineThreshold;
    int streamWindow;
    IdleStrategy idleStrategy;
    PeerAuthorizationPolicy peerPolicy;
    int maxInboundMessageSize;
    int maxInboundMetadataSize;
    long handshakeTimeoutMillis;
    DataMovement movement;
    long idleTrimMillis;
    int maxConcurrentCallsPerConnection;
    int maxConnectionsPerUid;

    Editor(ShmTransportConfig c) {
      ringCapacity = c.ringCapacity;
      poolSize = c.poolSize;
      maxSegmentBytes = c.maxSegmentBytes;
      inlineThreshold = c.inlineThreshold;
      streamWindow = c.streamWindow;
      idleStrategy = c.idleStrategy;
      peerPolicy = c.peerPolicy;
      maxInboundMessageSize = c.maxInboundMessageSize;
      maxInboundMetadataSize = c.maxInboundMetadataSize;
      handshakeTimeoutMillis = c.handshakeTimeoutMillis;
      movement = c.movement;
      idleTrimMillis = c.idleTrimMillis;
      maxConcurrentCallsPerConnection = c.maxConcurrentCallsPerConnection;
      maxConnectionsPerUid = c.maxConnectionsPerUid;
    }
  }
}
