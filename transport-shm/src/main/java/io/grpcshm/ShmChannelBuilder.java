package io.grpcshm;

import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.ForwardingChannelBuilder2;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.internal.ClientTransportFactory;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.ManagedChannelImplBuilder;
import io.grpc.netty.InternalNettyChannelBuilder;
import io.grpc.netty.NettyChannelBuilder;
import io.grpcshm.internal.fallback.RoutingClientTransportFactory;
import io.grpcshm.internal.loop.GrpcDefaultExecutor;
import io.grpcshm.internal.loop.HoldingExecutor;
import io.grpcshm.internal.proto.ProtoParsing;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A channel builder that talks to co-located servers over shared memory and to everything else
 * over stock Netty HTTP/2. Use it where you used {@code ManagedChannelBuilder.forTarget}:
 *
 * <pre>{@code
 * ManagedChannel ch = ShmChannelBuilder.forTarget("localhost:50051").usePlaintext().build();
 * }</pre>
 *
 * <p>Options that concern the TCP path (Netty settings) apply to the fallback; generic
 * options (interceptors, executors, retries, name resolution, message and metadata limits,
 * keepalive) apply to both paths.
 *
 * <p><b>Security.</b> Shared memory authenticates the server by the kernel's peer credentials
 * ({@link #serverAuthorizationPolicy}, default: same user id), not by a certificate. So shared
 * memory is only used by a channel that asked for plaintext ({@link #usePlaintext}). A channel
 * that asked for transport security ({@link #useTransportSecurity}, which is also the default
 * when neither is called) never silently trades the certificate check for it: in
 * {@link TransportMode#AUTO} it uses TLS over TCP for every target, in
 * {@link TransportMode#SHM_ONLY} its calls fail with UNAVAILABLE, unless
 * {@link #sharedMemoryWithTransportSecurity} accepts the peer-credential check instead. Request
 * security on this builder: TLS settings made through {@link #configureTcp} alone are not seen
 * here.
 */
public final class ShmChannelBuilder extends ForwardingChannelBuilder2<ShmChannelBuilder> {
  private final ManagedChannelImplBuilder delegate;
  private final NettyChannelBuilder netty;
  private final SharedMemoryOptions options = new SharedMemoryOptions();
  private TransportMode mode = TransportMode.AUTO;
  private boolean plaintext;
  private boolean shmWithTransportSecurity;
  private long keepAliveTimeNanos = GrpcUtil.KEEPALIVE_TIME_NANOS_DISABLED;
  private long keepAliveTimeoutNanos = GrpcUtil.DEFAULT_KEEPALIVE_TIMEOUT_NANOS;
  private boolean keepAliveWithoutCalls;
  private Duration negativeCacheTtl = Duration.ofSeconds(10);
  /** The application's call executor (null: grpc's default); the channel gets it wrapped. */
  private Executor callExecutor;
  /** grpc's default pool for the channel being built (null: the application named one). */
  private GrpcDefaultExecutor buildingDefault;

  private ShmChannelBuilder(String target) {
    this.netty = NettyChannelBuilder.forTarget(target);
    this.delegate = new ManagedChannelImplBuilder(target, this::buildTransportFactory,
        () -> plaintext ? GrpcUtil.DEFAULT_PORT_PLAINTEXT : GrpcUtil.DEFAULT_PORT_SSL);
    // First in the list, so innermost: stubs and the application's interceptors see their own
    // method descriptors. The factory runs at build(), with the mode set by then.
    interceptWithTarget(unusedTarget -> ProtoParsing.forChannel(options.protobufParsing()));
    intercept(HoldingExecutor.callExecutorInterceptor());
  }

  /** A channel to {@code target} (a name-resolver URI or "host:port"). */
  public static ShmChannelBuilder forTarget(String target) {
    return new ShmChannelBuilder(Objects.requireNonNull(target, "target"));
  }

  /** A channel to {@code host:port}. */
  public static ShmChannelBuilder forAddress(String host, int port) {
    return forTarget(GrpcUtil.authorityFromHostAndPort(host, port));
  }

  @Override
  protected ManagedChannelBuilder<?> delegate() {
    return delegate;
  }

  private ClientTransportFactory buildTransportFactory() {
    GrpcDefaultExecutor grpcDefault = buildingDefault;
    ClientTransportFactory tcp = InternalNettyChannelBuilder.buildTransportFactory(netty);
    String fixed = options.rendezvous();
    io.grpc.Status forbidden = plaintext || shmWithTransportSecurity ? null
        : io.grpc.Status.UNAVAILABLE.withDescription("this channel asked for transport security"
            + " (TLS), which shared memory does not provide; call usePlaintext(), or"
            + " sharedMemoryWithTransportSecurity(true) to accept the server's peer credentials"
            + " instead");
    TransportMode effective = mode;
    String noNative = io.grpcshm.internal.nativeio.NativeAccess.unavailableReason();
    if (noNative != null) {
      if (mode == TransportMode.AUTO) {
        effective = TransportMode.TCP_ONLY;
      } else if (mode == TransportMode.SHM_ONLY) {
        forbidden = io.grpc.Status.UNAVAILABLE.withDescription(
            "shared memory is unavailable: " + noNative);
      }
    }
    return new RoutingClientTransportFactory(tcp, new RoutingClientTransportFactory.ShmSettings(
        effective, options.config(),
        target -> fixed != null ? List.of(fixed) : ShmAddress.clientRendezvous(target),
        keepAliveTimeNanos, keepAliveTimeoutNanos, keepAliveWithoutCalls, negativeCacheTtl,
        forbidden, options.rendezvousDirectory()),
        grpcDefault == null ? null : grpcDefault::release);
  }

  /**
   * As grpc's. The channel's calls get it wrapped so that what one shared-memory ring batch
   * brings a call reaches it as one task (docs/ARCHITECTURE.md, "Held hand-offs"); over TCP, and
   * for the direct executor, it is used as it is.
   */
  @Override
  public ShmChannelBuilder executor(Executor executor) {
    this.callExecutor = executor;
    delegate.executor(executor);
    return this;
  }

  @Override
  public ShmChannelBuilder directExecutor() {
    this.callExecutor = MoreExecutors.directExecutor();
    delegate.directExecutor();
    return this;
  }

  @Override
  public ManagedChannel build() {
    // grpc's default pool, wrapped, is taken at the first call and given back when the channel
    // has terminated (its transport factory closes), as grpc does with it.
    GrpcDefaultExecutor grpcDefault = callExecutor == null ? new GrpcDefaultExecutor() : null;
    delegate.executor(HoldingExecutor.around(callExecutor != null ? callExecutor : grpcDefault));
    buildingDefault = grpcDefault;
    try {
      return delegate.build();
    } finally {
      buildingDefault = null;
      delegate.executor(callExecutor);
    }
  }

  // ---- shared-memory options ----

  /** AUTO (default), SHM_ONLY or TCP_ONLY. */
  public ShmChannelBuilder transportMode(TransportMode mode) {
    this.mode = Objects.requireNonNull(mode, "mode");
    return this;
  }

  /**
   * Connects to this rendezvous socket instead of the ones derived from the target address
   * ({@code @grpc-shm/<ip>/<port>}, then {@code @grpc-shm/*}{@code /<port>}); names starting
   * with '@' are abstract, others are paths. The target is still sent to the server, which
   * refuses it unless its TCP listener serves that address.
   */
  public ShmChannelBuilder rendezvous(String name) {
    options.rendezvous(name);
    return this;
  }

  /**
   * The node-local rendezvous directory (default: {@link ShmAddress#configuredDirectory()}, i.e.
   * {@code -Dio.grpcshm.rendezvousDirectory} or {@code GRPC_SHM_DIR}; null: none). A target that
   * is not an address of this network namespace is reached over shared memory when a server in
   * another namespace of this node published it there ({@code <dir>/<ip>_<port>.sock}), after
   * the same checks as a local one (our {@link #serverAuthorizationPolicy}, the server's check of
   * the target). Nothing published, or a stale file: TCP ({@link TransportMode#AUTO}).
   */
  public ShmChannelBuilder rendezvousDirectory(java.nio.file.Path directory) {
    options.rendezvousDirectory(directory);
    return this;
  }

  /**
   * How the event loops serving this channel's connections wait for frames. A connection to a
   * server in this same process uses it without its yield phase
   * ({@link IdleStrategy#withoutYield}).
   */
  public ShmChannelBuilder idleStrategy(IdleStrategy strategy) {
    options.idleStrategy(strategy);
    return this;
  }

  /**
   * Whether a channel that asked for transport security ({@link #useTransportSecurity}, the
   * default without {@link #usePlaintext}) may use shared memory to a co-located server, which is
   * then authenticated by its peer credentials ({@link #serverAuthorizationPolicy}) instead of a
   * certificate (default false: such a channel never uses shared memory). Remote targets still
   * get TLS.
   */
  public ShmChannelBuilder sharedMemoryWithTransportSecurity(boolean allow) {
    this.shmWithTransportSecurity = allow;
    return this;
  }

  /**
   * Which server processes this client accepts (default: same user id). A refused server means
   * TCP in {@link TransportMode#AUTO} (logged once per target at WARNING), the policy's status in
   * {@link TransportMode#SHM_ONLY}.
   */
  public ShmChannelBuilder serverAuthorizationPolicy(PeerAuthorizationPolicy policy) {
    options.peerPolicy(policy);
    return this;
  }

  /**
   * Ring capacity and payload pool size requested per direction, and the cap on extra payload
   * segments for messages larger than the pool. The server grants at most its own maximum; a
   * server that grants more than asked is refused.
   */
  public ShmChannelBuilder sharedMemorySizes(int ringCapacity, long poolSize, long maxSegmentBytes) {
    options.sizes(ringCapacity, poolSize, maxSegmentBytes);
    return this;
  }

  /**
   * How long a shared-memory connection may be idle before it gives back the memory of its
   * payload pool beyond the first MiB and of its idle extra segments, in both processes (default
   * 10 s; {@link java.time.Duration#ZERO} never). The next large message pays the page faults
   * again.
   */
  public ShmChannelBuilder idleMemoryTrim(java.time.Duration delay) {
    options.idleMemoryTrim(delay);
    return this;
  }

  /** Per-stream flow-control window for data the server sends us. */
  public ShmChannelBuilder streamWindow(int bytes) {
    options.streamWindow(bytes);
    return this;
  }

  /**
   * How this channel's large off-heap request payloads are moved into shared memory (data
   * mover and mode per call); default {@link DataMovement#defaults()}.
   */
  public ShmChannelBuilder dataMovement(DataMovement movement) {
    options.dataMovement(movement);
    return this;
  }

  /**
   * How this channel parses responses of methods that use grpc's protobuf marshaller (generated
   * stubs): {@link ProtobufParsing#COPY_ONCE} (default: a large response received over shared
   * memory is copied once into the message; over TCP grpc's marshaller is used as is), {@link
   * ProtobufParsing#STOCK} (grpc's marshaller exactly) or {@link ProtobufParsing#ZERO_COPY}
   * (codec-zerocopy's aliasing, with its release contract, on every call of the channel).
   */
  public ShmChannelBuilder protobufParsing(ProtobufParsing mode) {
    options.protobufParsing(mode);
    return this;
  }

  /** How long a target whose shm handshake failed goes straight to TCP (default 10 s). */
  public ShmChannelBuilder fallbackCacheTtl(Duration ttl) {
    this.negativeCacheTtl = Objects.requireNonNull(ttl, "ttl");
    return this;
  }

  /** Configures the stock Netty builder used for the TCP path (TLS, event loops, windows...). */
  public ShmChannelBuilder configureTcp(Consumer<NettyChannelBuilder> configurer) {
    configurer.accept(netty);
    return this;
  }

  void setStatsEnabledInternal(boolean enabled) {
    delegate.setStatsEnabled(enabled);
    io.grpc.netty.InternalNettyChannelBuilder.setStatsEnabled(netty, enabled);
  }

  // ---- options with a meaning on both paths ----

  @Override
  public ShmChannelBuilder usePlaintext() {
    netty.usePlaintext();
    plaintext = true;
    return this;
  }

  @Override
  public ShmChannelBuilder useTransportSecurity() {
    netty.useTransportSecurity();
    plaintext = false;
    return this;
  }

  @Override
  public ShmChannelBuilder maxInboundMessageSize(int bytes) {
    netty.maxInboundMessageSize(bytes);
    options.maxInboundMessageSize(bytes);
    return this;
  }

  @Override
  public ShmChannelBuilder maxInboundMetadataSize(int bytes) {
    netty.maxInboundMetadataSize(bytes);
    options.maxInboundMetadataSize(bytes);
    return this;
  }

  @Override
  public ShmChannelBuilder keepAliveTime(long time, TimeUnit unit) {
    netty.keepAliveTime(time, unit);
    keepAliveTimeNanos = Math.max(unit.toNanos(time), TimeUnit.SECONDS.toNanos(10));
    if (keepAliveTimeNanos >= TimeUnit.DAYS.toNanos(365)) {
      keepAliveTimeNanos = GrpcUtil.KEEPALIVE_TIME_NANOS_DISABLED;
    }
    return this;
  }

  @Override
  public ShmChannelBuilder keepAliveTimeout(long timeout, TimeUnit unit) {
    netty.keepAliveTimeout(timeout, unit);
    keepAliveTimeoutNanos = Math.max(unit.toNanos(timeout), TimeUnit.MILLISECONDS.toNanos(10));
    return this;
  }

  @Override
  public ShmChannelBuilder keepAliveWithoutCalls(boolean enable) {
    netty.keepAliveWithoutCalls(enable);
    keepAliveWithoutCalls = enable;
    return this;
  }
}
