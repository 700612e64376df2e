package io.grpcshm.internal.fallback;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.ChannelLogger;
import io.grpc.Status;
import io.grpc.internal.ClientTransportFactory;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.SharedResourceHolder;
import io.grpcshm.ShmAddress;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.handshake.ShmHandshakeException;
import io.grpcshm.internal.loop.TransportTimer;
import io.grpcshm.internal.transport.ShmClientTransport;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The channel's transport factory: shared memory for addresses of this host whose server offers
 * it, stock Netty TCP for everything else. Targets that failed the shm handshake are remembered
 * for a while (Caffeine, with a TTL) so reconnects go straight to TCP; the reason is logged once
 * per target at FINE.
 */
public final class RoutingClientTransportFactory implements ClientTransportFactory {
  private static final Logger log = Logger.getLogger(RoutingClientTransportFactory.class.getName());

  /** Settings of the shm path that come from the channel builder. */
  public record ShmSettings(
      TransportMode mode,
      ShmTransportConfig config,
      /**
       * The rendezvous names to try, in order, for a local TCP target (default:
       * {@link ShmAddress#clientRendezvous}, the server bound to that address, then a wildcard
       * bind on its port).
       */
      Function<InetSocketAddress, List<String>> rendezvousFor,
      long keepAliveTimeNanos,
      long keepAliveTimeoutNanos,
      boolean keepAliveWithoutCalls,
      Duration negativeCacheTtl,
      /**
       * Non-null: this channel must not use shared memory at all (it asked for transport
       * security); {@code SHM_ONLY} calls fail with this status, {@code AUTO} uses TCP.
       */
      Status shmForbidden,
      /**
       * Non-null: the node-local rendezvous directory, where a target that is not an address of
       * this network namespace may be published by a server in another namespace of this node.
       */
      Path rendezvousDirectory) {
    public ShmSettings(TransportMode mode, ShmTransportConfig config,
        Function<InetSocketAddress, List<String>> rendezvousFor, long keepAliveTimeNanos,
        long keepAliveTimeoutNanos, boolean keepAliveWithoutCalls, Duration negativeCacheTtl,
        Status shmForbidden) {
      this(mode, config, rendezvousFor, keepAliveTimeNanos, keepAliveTimeoutNanos,
          keepAliveWithoutCalls, negativeCacheTtl, shmForbidden, null);
    }

    public ShmSettings(TransportMode mode, ShmTransportConfig config,
        Function<InetSocketAddress, List<String>> rendezvousFor, long keepAliveTimeNanos,
        long keepAliveTimeoutNanos, boolean keepAliveWithoutCalls, Duration negativeCacheTtl) {
      this(mode, config, rendezvousFor, keepAliveTimeNanos, keepAliveTimeoutNanos,
          keepAliveWithoutCalls, negativeCacheTtl, null, null);
    }
  }

  private final ClientTransportFactory tcp;
  private final ShmSettings settings;
  /** Whether an address is this host's: a host-wide fact, so one cache for every channel. */
  private static final CoLocation CO_LOCATION = new CoLocation();
  /**
   * The per-channel caches below are made on first use: most channels never see a refusal or a
   * remote target, and building a cache costs more than the rest of a channel's transport
   * factory (a channel is built per connection in some applications).
   */
  private final Object cachesLock = new Object();
  /**
   * Targets whose shm handshake failed, for {@code negativeCacheTtl}; null until one does. Made
   * under {@code cachesLock}, read without it.
   */
  private volatile Cache<String, Status> refusedTargets;
  @GuardedBy("cachesLock")
  private Cache<String, Boolean> loggedTargets;
  @GuardedBy("cachesLock")
  private Cache<String, Boolean> loggedRefusals;
  private final ScheduledExecutorService scheduler;
  private boolean closed;

  /** Runs at close: gives back what the channel took for this factory's life. */
  private final Runnable onClose;

  public RoutingClientTransportFactory(ClientTransportFactory tcp, ShmSettings settings) {
    this(tcp, settings, null);
  }

  /** {@code onClose} (may be null) runs once when the channel closes this factory. */
  public RoutingClientTransportFactory(ClientTransportFactory tcp, ShmSettings settings,
      Runnable onClose) {
    this.onClose = onClose;
    this.tcp = tcp;
    this.settings = settings;
    this.scheduler = SharedResourceHolder.get(TransportTimer.RESOURCE);
  }

  @Override
  public ConnectionClientTransport newClientTransport(SocketAddress address,
      ClientTransportOptions options, ChannelLogger channelLogger) {
    if (settings.mode() == TransportMode.TCP_ONLY) {
      return tcp.newClientTransport(address, options, channelLogger);
    }
    if (settings.shmForbidden() != null) {
      if (settings.mode() == TransportMode.SHM_ONLY || address instanceof ShmAddress) {
        // (An ShmAddress has no TCP path to fall back to.)
        return ShmClientTransport.failing(address, settings.shmForbidden(), scheduler);
      }
      return tcp.newClientTransport(address, options, channelLogger);
    }
    List<String> rendezvous = null;
    InetSocketAddress target = null;
    if (address instanceof ShmAddress shmAddress) {
      rendezvous = List.of(shmAddress.rendezvous());
    } else if (address instanceof InetSocketAddress inet && CO_LOCATION.isLocal(inet.getAddress())) {
      // The server must be the one a TCP connection to this address reaches: the names derive
      // from the address, and the server checks the target we send (PROTOCOL.md 2, 3.3).
      target = ShmAddress.effectiveTarget(inet);
      rendezvous = settings.rendezvousFor().apply(target);
    } else if (address instanceof InetSocketAddress inet && inet.getAddress() != null
        && settings.rendezvousDirectory() != null) {
      // Not an address of our namespace: a server in another namespace of this node may have
      // published it (the file name is the address). Its identity is checked as for a local
      // target: our policy checks its peer credentials, it checks the target we send.
      String published = ShmAddress.directoryRendezvous(settings.rendezvousDirectory(), inet);
      if (Files.exists(Path.of(published), LinkOption.NOFOLLOW_LINKS)) {
        target = inet;
        rendezvous = List.of(published);
      }
    }
    if (rendezvous == null && settings.mode() == TransportMode.SHM_ONLY) {
      // Never map a remote address onto a local rendezvous: that would reach the wrong server.
      return ShmClientTransport.failing(address, Status.UNAVAILABLE.withDescription(
          "shared memory only reaches servers on this host; " + address + " is not local"
              + (settings.rendezvousDirectory() == null ? ""
                  : " and not published in " + settings.rendezvousDirectory())),
          scheduler);
    }
    if (rendezvous == null) {
      logOnce(address.toString(), "target " + address + " is not on this host");
      return tcp.newClientTransport(address, options, channelLogger);
    }
    ShmClientTransport shm = new ShmClientTransport(rendezvous, target, address,
        options.getAuthority(),
        options.getUserAgent(), options.getEagAttributes(), settings.config(), scheduler,
        settings.keepAliveTimeNanos(), settings.keepAliveTimeoutNanos(),
        settings.keepAliveWithoutCalls(), null);
    if (settings.mode() == TransportMode.SHM_ONLY || address instanceof ShmAddress) {
      return shm;
    }
    final String key = address.toString();
    Cache<String, Status> refusedSoFar = refusedTargets;
    Status refused = refusedSoFar == null ? null : refusedSoFar.getIfPresent(key);
    if (refused != null) {
      return tcp.newClientTransport(address, options, channelLogger);
    }
    return new FallbackClientTransport(shm,
        () -> tcp.newClientTransport(address, options, channelLogger),
        status -> {
          refused(key, status);
          if (ShmHandshakeException.isServerRefused(status) && firstRefusalLogged(key)) {
            // The co-located server failed our authorization policy: worth a line, once.
            log.warning("shared-memory server for " + address + " refused by this channel's "
                + "server authorization policy, using TCP: " + status);
          } else {
            logOnce(key, "shared memory unavailable for " + address + ", using TCP: " + status);
          }
        });
  }

  private void refused(String key, Status status) {
    synchronized (cachesLock) {
      if (refusedTargets == null) {
        refusedTargets = Caffeine.newBuilder()
            .maximumSize(4096)
            .expireAfterWrite(settings.negativeCacheTtl())
            .build();
      }
      refusedTargets.put(key, status);
    }
  }

  /** True the first time {@code key}'s refusal by the server's policy is to be logged. */
  private boolean firstRefusalLogged(String key) {
    synchronized (cachesLock) {
      if (loggedRefusals == null) {
        loggedRefusals = Caffeine.newBuilder().maximumSize(4096).build();
      }
      return loggedRefusals.asMap().putIfAbsent(key, Boolean.TRUE) == null;
    }
  }

  private void logOnce(String key, String message) {
    if (!log.isLoggable(Level.FINE)) {
      return;
    }
    boolean first;
    synchronized (cachesLock) {
      if (loggedTargets == null) {
        loggedTargets = Caffeine.newBuilder().maximumSize(4096).build();
      }
      first = loggedTargets.asMap().putIfAbsent(key, Boolean.TRUE) == null;
    }
    if (first) {
      log.fine(message);
    }
  }

  @Override
  public ScheduledExecutorService getScheduledExecutorService() {
    return scheduler;
  }

  @Override
  public SwapChannelCredentialsResult swapChannelCredentials(io.grpc.ChannelCredentials creds) {
    return null;
  }

  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    tcp.close();
    SharedResourceHolder.release(TransportTimer.RESOURCE, scheduler);
    if (onClose != null) {
      onClose.run();
    }
  }

  @Override
  public Collection<Class<? extends SocketAddress>> getSupportedSocketAddressTypes() {
    return List.of(InetSocketAddress.class, ShmAddress.class);
  }
}
