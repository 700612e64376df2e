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
    DataMovement movement) {

  public static final int DEFAULT_RING_CAPACITY = 1 << 20;
  public static final long DEFAULT_POOL_SIZE = 256L << 20;
  public static final long DEFAULT_MAX_SEGMENT_BYTES = 4L << 30;
  public static final int DEFAULT_INLINE_THRESHOLD = 16 * 1024;
  public static final int DEFAULT_STREAM_WINDOW = 4 << 20;

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
        DataMovement.defaults());
  }

  public ShmTransportConfig withMaxInboundMessageSize(int size) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
        streamWindow, idleStrategy, peerPolicy, size, maxInboundMetadataSize,
        handshakeTimeoutMillis, movement);
  }

  public ShmTransportConfig withMaxInboundMetadataSize(int size) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
        streamWindow, idleStrategy, peerPolicy, maxInboundMessageSize, size,
        handshakeTimeoutMillis, movement);
  }

  public ShmTransportConfig withIdleStrategy(IdleStrategy strategy) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
        streamWindow, strategy, peerPolicy, maxInboundMessageSize, maxInboundMetadataSize,
        handshakeTimeoutMillis, movement);
  }

  public ShmTransportConfig withPeerPolicy(PeerAuthorizationPolicy policy) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
        streamWindow, idleStrategy, policy, maxInboundMessageSize, maxInboundMetadataSize,
        handshakeTimeoutMillis, movement);
  }

  public ShmTransportConfig withSizes(int ringCapacity, long poolSize, long maxSegmentBytes) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes,
        Math.min(inlineThreshold, ringCapacity / 8), streamWindow, idleStrategy, peerPolicy,
        maxInboundMessageSize, maxInboundMetadataSize, handshakeTimeoutMillis, movement);
  }

  public ShmTransportConfig withMovement(DataMovement movement) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
        streamWindow, idleStrategy, peerPolicy, maxInboundMessageSize, maxInboundMetadataSize,
        handshakeTimeoutMillis, movement);
  }

  public ShmTransportConfig withStreamWindow(int window) {
    return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
        window, idleStrategy, peerPolicy, maxInboundMessageSize, maxInboundMetadataSize,
        handshakeTimeoutMillis, movement);
  }
}
