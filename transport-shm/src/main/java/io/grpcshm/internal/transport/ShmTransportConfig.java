package io.grpcshm.internal.transport;

import io.grpc.internal.GrpcUtil;
import io.grpcshm.DataMovement;
import io.grpcshm.IdleStrategy;
import io.grpcshm.PeerAuthorizationPolicy;
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
 * @param replyMailbox a server offers reply mailboxes (PROTOCOL.md §7.5) and a client uses them
 *     where offered: a blocking unary call's answer is written by the server into a page of the
 *     client's pool and wakes the caller directly. Default on; {@code
 *     -Dio.grpcshm.replyMailbox=false} turns it off (both roles) for comparison
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
    int maxConnectionsPerUid,
    boolean replyMailbox) {

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
    if (handshakeTimeoutMillis <= 0) {
      throw new IllegalArgumentException(
          "handshake timeout must be positive: " + handshakeTimeoutMillis);
    }
    if (maxConnectionsPerUid <= 0) {
      throw new IllegalArgumentException(
          "max connections per uid must be positive: " + maxConnectionsPerUid);
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
        DEFAULT_MAX_CONNECTIONS_PER_UID,
        !"false".equals(System.getProperty("io.grpcshm.replyMailbox")));
  }

  /** A builder starting from this configuration's settings. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  /**
   * Changes some settings of a configuration; {@link #build} checks the result. The one place
   * besides the record header that lists every setting.
   */
  public static final class Builder {
    private int ringCapacity;
    private long poolSize;
    private long maxSegmentBytes;
    private int inlineThreshold;
    private int streamWindow;
    private IdleStrategy idleStrategy;
    private PeerAuthorizationPolicy peerPolicy;
    private int maxInboundMessageSize;
    private int maxInboundMetadataSize;
    private long handshakeTimeoutMillis;
    private DataMovement movement;
    private long idleTrimMillis;
    private int maxConcurrentCallsPerConnection;
    private int maxConnectionsPerUid;
    private boolean replyMailbox;

    private Builder(ShmTransportConfig c) {
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
      replyMailbox = c.replyMailbox;
    }

    /** Ring and pool sizes; the inline threshold shrinks with a ring too small for it. */
    public Builder sizes(int ringCapacity, long poolSize, long maxSegmentBytes) {
      this.ringCapacity = ringCapacity;
      this.poolSize = poolSize;
      this.maxSegmentBytes = maxSegmentBytes;
      this.inlineThreshold = Math.min(inlineThreshold, ringCapacity / 8);
      return this;
    }

    public Builder streamWindow(int bytes) {
      this.streamWindow = bytes;
      return this;
    }

    public Builder idleStrategy(IdleStrategy strategy) {
      this.idleStrategy = strategy;
      return this;
    }

    public Builder peerPolicy(PeerAuthorizationPolicy policy) {
      this.peerPolicy = policy;
      return this;
    }

    public Builder maxInboundMessageSize(int bytes) {
      this.maxInboundMessageSize = bytes;
      return this;
    }

    public Builder maxInboundMetadataSize(int bytes) {
      this.maxInboundMetadataSize = bytes;
      return this;
    }

    public Builder handshakeTimeoutMillis(long millis) {
      this.handshakeTimeoutMillis = millis;
      return this;
    }

    public Builder movement(DataMovement movement) {
      this.movement = movement;
      return this;
    }

    public Builder idleTrimMillis(long millis) {
      this.idleTrimMillis = millis;
      return this;
    }

    public Builder maxConcurrentCallsPerConnection(int calls) {
      this.maxConcurrentCallsPerConnection = calls;
      return this;
    }

    public Builder maxConnectionsPerUid(int connections) {
      this.maxConnectionsPerUid = connections;
      return this;
    }

    public Builder replyMailbox(boolean enabled) {
      this.replyMailbox = enabled;
      return this;
    }

    public ShmTransportConfig build() {
      return new ShmTransportConfig(ringCapacity, poolSize, maxSegmentBytes, inlineThreshold,
          streamWindow, idleStrategy, peerPolicy, maxInboundMessageSize, maxInboundMetadataSize,
          handshakeTimeoutMillis, movement, idleTrimMillis, maxConcurrentCallsPerConnection,
          maxConnectionsPerUid, replyMailbox);
    }
  }
}
