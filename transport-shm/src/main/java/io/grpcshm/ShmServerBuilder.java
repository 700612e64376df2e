package io.grpcshm;

import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.BinaryLog;
import io.grpc.BindableService;
import io.grpc.CompressorRegistry;
import io.grpc.DecompressorRegistry;
import io.grpc.ForwardingServerBuilder;
import io.grpc.HandlerRegistry;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerCallExecutorSupplier;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServerStreamTracer;
import io.grpc.ServerTransportFilter;
import io.grpc.internal.ServerImplBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpcshm.internal.handshake.ServedAddress;
import io.grpcshm.internal.loop.GrpcDefaultExecutor;
import io.grpcshm.internal.loop.HoldingExecutor;
import io.grpcshm.internal.proto.ProtoParsing;
import io.grpcshm.internal.transport.ShmInternalServer;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A server builder whose server answers HTTP/2 on its TCP port, exactly as a stock grpc Netty
 * server, and also accepts shared-memory connections from processes on the same host:
 *
 * <pre>{@code
 * Server s = ShmServerBuilder.forPort(50051).addService(myService).build().start();
 * }</pre>
 *
 * <p>Services, interceptors, executors, tracers, filters, registries and message limits apply to
 * both paths; TLS and Netty connection management (keepalive, connection age) apply to TCP. The
 * shared-memory rendezvous is {@code @grpc-shm/<ip>/<port>} for a server bound to one address and
 * {@code @grpc-shm/*}{@code /<port>} for a wildcard bind ({@link #forPort}), in the abstract socket
 * namespace, unless {@link #rendezvous} names another. Either way a client is only served if the
 * TCP address it aimed at is one the TCP listener serves (PROTOCOL.md 2, 3.3).
 */
public final class ShmServerBuilder extends ForwardingServerBuilder<ShmServerBuilder> {
  private final NettyServerBuilder netty;
  /** Every option with a meaning on both paths, replayed onto the shared-memory server. */
  private final List<Consumer<ServerBuilder<?>>> common = new ArrayList<>();
  private final SharedMemoryOptions options = new SharedMemoryOptions();
  private boolean shmEnabled = true;
  /** The application's call executor (null: grpc's default); the shm server wraps it. */
  private Executor callExecutor;

  /** A service added to both servers; the shared-memory one may get other marshallers. */
  private record AddService(ServerServiceDefinition definition)
      implements Consumer<ServerBuilder<?>> {
    @Override
    public void accept(ServerBuilder<?> builder) {
      builder.addService(definition);
    }
  }

  private ShmServerBuilder(NettyServerBuilder netty) {
    this.netty = netty;
  }

  /** A server on {@code port} of every interface (0 picks a free port). */
  public static ShmServerBuilder forPort(int port) {
    return new ShmServerBuilder(NettyServerBuilder.forPort(port));
  }

  /** A server on a specific TCP address. */
  public static ShmServerBuilder forAddress(SocketAddress address) {
    if (!(address instanceof InetSocketAddress)) {
      throw new IllegalArgumentException("ShmServerBuilder needs an InetSocketAddress: " + address);
    }
    return new ShmServerBuilder(NettyServerBuilder.forAddress(address));
  }

  /**
   * Options not overridden here (TLS, keepalive, connection age: TCP only) reach the Netty
   * builder as they are.
   */
  @Override
  protected ServerBuilder<?> delegate() {
    return netty;
  }

  private ShmServerBuilder both(Consumer<ServerBuilder<?>> option) {
    option.accept(netty);
    common.add(option);
    return this;
  }

  // ---- shared-memory options ----

  /** Listen for shared-memory clients on this name ('@' = abstract namespace) instead. */
  public ShmServerBuilder rendezvous(String name) {
    options.rendezvous(name);
    return this;
  }

  /**
   * A node-local rendezvous directory shared with clients in other network namespaces (a volume
   * shared by the containers or pods of one node; default: {@link
   * ShmAddress#configuredDirectory()}, i.e. {@code -Dio.grpcshm.rendezvousDirectory} or
   * {@code GRPC_SHM_DIR}; null: none). At start the server binds, besides its abstract
   * rendezvous, one path socket {@code <dir>/<ip>_<port>.sock} (mode 0660) per address it serves
   * (a wildcard bind: each non-loopback, non-link-local interface address at start), replacing a
   * stale file of that name, and removes them at shutdown. The directory must exist; its mode
   * decides who may publish there (docs/SECURITY.md, docs/DEPLOYMENT.md). Clients are still
   * checked by {@link #clientAuthorizationPolicy} and by the target they aimed at.
   */
  public ShmServerBuilder rendezvousDirectory(java.nio.file.Path directory) {
    options.rendezvousDirectory(directory);
    return this;
  }

  /** Serve TCP only (the server then behaves exactly like a stock Netty server). */
  public ShmServerBuilder sharedMemoryEnabled(boolean enabled) {
    this.shmEnabled = enabled;
    return this;
  }

  /**
   * How the shared-memory server parses requests of methods that use grpc's protobuf marshaller
   * (generated services): {@link ProtobufParsing#COPY_ONCE} (default: a large request is copied
   * once from shared memory into the message), {@link ProtobufParsing#STOCK} (grpc's marshaller
   * exactly) or {@link ProtobufParsing#ZERO_COPY} (codec-zerocopy's aliasing, with its release
   * contract). Applies to the services added with {@code addService}, whenever they were added;
   * the TCP server always keeps grpc's marshallers.
   */
  public ShmServerBuilder protobufParsing(ProtobufParsing mode) {
    options.protobufParsing(mode);
    return this;
  }

  /** Which local client processes may connect over shared memory (default: same user id). */
  public ShmServerBuilder clientAuthorizationPolicy(PeerAuthorizationPolicy policy) {
    options.peerPolicy(policy);
    return this;
  }

  /** As {@link ShmChannelBuilder#idleStrategy}, for this server's connections. */
  public ShmServerBuilder idleStrategy(IdleStrategy strategy) {
    options.idleStrategy(strategy);
    return this;
  }

  /** Largest ring and pool a client may ask for, and the cap on extra payload segments. */
  public ShmServerBuilder sharedMemorySizes(int ringCapacity, long poolSize, long maxSegmentBytes) {
    options.sizes(ringCapacity, poolSize, maxSegmentBytes);
    return this;
  }

  /** As {@link ShmChannelBuilder#idleMemoryTrim}, for this server's connections. */
  public ShmServerBuilder idleMemoryTrim(java.time.Duration delay) {
    options.idleMemoryTrim(delay);
    return this;
  }

  /** Per-stream flow-control window for data clients send us. */
  public ShmServerBuilder streamWindow(int bytes) {
    options.streamWindow(bytes);
    return this;
  }

  /** As {@link ShmChannelBuilder#dataMovement}, for this server's response payloads. */
  public ShmServerBuilder dataMovement(DataMovement movement) {
    options.dataMovement(movement);
    return this;
  }

  /** Configures the stock Netty builder of the TCP path (TLS, event loops, connection age...). */
  public ShmServerBuilder configureTcp(Consumer<NettyServerBuilder> configurer) {
    configurer.accept(netty);
    return this;
  }

  void setStatsEnabledInternal(boolean enabled) {
    io.grpc.netty.InternalNettyServerBuilder.setStatsEnabled(netty, enabled);
    common.add(b -> {
      if (b instanceof ServerImplBuilder impl) {
        impl.setStatsEnabled(enabled);
      }
    });
  }

  // ---- options for both paths ----

  @Override
  public ShmServerBuilder directExecutor() {
    this.callExecutor = MoreExecutors.directExecutor();
    return both(ServerBuilder::directExecutor);
  }

  /**
   * As grpc's. Over shared memory the executor is wrapped so that what one ring batch brings a
   * call reaches it as one task (docs/ARCHITECTURE.md, "Held hand-offs"); the direct executor is
   * used as it is.
   */
  @Override
  public ShmServerBuilder executor(Executor executor) {
    this.callExecutor = executor;
    return both(b -> b.executor(executor));
  }

  @Override
  public ShmServerBuilder callExecutor(ServerCallExecutorSupplier supplier) {
    return both(b -> b.callExecutor(supplier));
  }

  @Override
  public ShmServerBuilder addService(ServerServiceDefinition service) {
    return both(new AddService(service));
  }

  @Override
  public ShmServerBuilder addService(BindableService service) {
    // Bind once so both servers share one service instance.
    return both(new AddService(service.bindService()));
  }

  @Override
  public ShmServerBuilder intercept(ServerInterceptor interceptor) {
    return both(b -> b.intercept(interceptor));
  }

  @Override
  public ShmServerBuilder addTransportFilter(ServerTransportFilter filter) {
    return both(b -> b.addTransportFilter(filter));
  }

  @Override
  public ShmServerBuilder addStreamTracerFactory(ServerStreamTracer.Factory factory) {
    return both(b -> b.addStreamTracerFactory(factory));
  }

  @Override
  public ShmServerBuilder fallbackHandlerRegistry(HandlerRegistry registry) {
    return both(b -> b.fallbackHandlerRegistry(registry));
  }

  @Override
  public ShmServerBuilder decompressorRegistry(DecompressorRegistry registry) {
    return both(b -> b.decompressorRegistry(registry));
  }

  @Override
  public ShmServerBuilder compressorRegistry(CompressorRegistry registry) {
    return both(b -> b.compressorRegistry(registry));
  }

  @Override
  public ShmServerBuilder handshakeTimeout(long timeout, TimeUnit unit) {
    // Bounds the shared-memory handshake too.
    options.handshakeTimeout(timeout, unit);
    return both(b -> b.handshakeTimeout(timeout, unit));
  }

  @Override
  public ShmServerBuilder setBinaryLog(BinaryLog binaryLog) {
    return both(b -> b.setBinaryLog(binaryLog));
  }

  @Override
  public ShmServerBuilder maxInboundMessageSize(int bytes) {
    netty.maxInboundMessageSize(bytes);
    options.maxInboundMessageSize(bytes);
    return this;
  }

  @Override
  public ShmServerBuilder maxInboundMetadataSize(int bytes) {
    netty.maxInboundMetadataSize(bytes);
    options.maxInboundMetadataSize(bytes);
    return this;
  }

  /**
   * The most shared-memory connections (handshakes in progress included) peers of one uid may
   * hold at once on this server; more are refused at accept with RESOURCE_EXHAUSTED (the client
   * falls back to TCP where its mode allows). Default {@value
   * ShmTransportConfig#DEFAULT_MAX_CONNECTIONS_PER_UID}.
   */
  public ShmServerBuilder maxConnectionsPerUid(int connections) {
    options.maxConnectionsPerUid(connections);
    return this;
  }

  /**
   * The most calls one client connection may have open at once, on both paths (as {@link
   * NettyServerBuilder#maxConcurrentCallsPerConnection}). Over TCP it is announced as HTTP/2's
   * MAX_CONCURRENT_STREAMS and clients queue for it (Netty's default: unlimited). Over shared
   * memory the handshake cannot announce it: a call beyond it fails at once with UNAVAILABLE
   * (the HTTP/2 REFUSED_STREAM mapping; nothing of the call ran, so a retry policy may retry it).
   * Default for shared memory: {@value ShmTransportConfig#DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION}.
   */
  public ShmServerBuilder maxConcurrentCallsPerConnection(int calls) {
    options.maxConcurrentCallsPerConnection(calls);
    netty.maxConcurrentCallsPerConnection(calls);
    return this;
  }

  @Override
  public Server build() {
    Server tcpServer = netty.build();
    if (!shmEnabled || io.grpcshm.internal.nativeio.NativeAccess.unavailableReason() != null) {
      return tcpServer;
    }
    List<Consumer<ServerBuilder<?>>> replayed = new ArrayList<>(common.size());
    for (Consumer<ServerBuilder<?>> option : common) {
      replayed.add(option instanceof AddService add
          ? new AddService(ProtoParsing.forServer(add.definition(), options.protobufParsing()))
          : option);
    }
    ShmTransportConfig shmConfig = options.config();
    Executor chosen = callExecutor;
    return new ShmServer(tcpServer, (bound, name) -> {
      ServedAddress served = new ServedAddress(bound);
      // grpc's default pool, wrapped, is taken at the first call and given back when this
      // server has terminated, as grpc does with it.
      GrpcDefaultExecutor grpcDefault = chosen == null ? new GrpcDefaultExecutor() : null;
      ServerImplBuilder builder = new ServerImplBuilder(
          (List<? extends ServerStreamTracer.Factory> tracers) ->
              new ShmInternalServer(name, served, shmConfig, tracers,
                  grpcDefault == null ? null : grpcDefault::release));
      for (Consumer<ServerBuilder<?>> option : replayed) {
        option.accept(builder);
      }
      builder.executor(HoldingExecutor.around(chosen != null ? chosen : grpcDefault));
      return builder.build();
    }, options.rendezvous(), options.rendezvousDirectory());
  }
}
