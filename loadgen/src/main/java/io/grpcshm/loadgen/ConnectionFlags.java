package io.grpcshm.loadgen;

import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * ghz's connection flags: connect timeout, keepalive, and TLS for the TCP path. Unlike ghz,
 * plaintext is the default (as grpc-load has always been): TLS is on once any TLS flag is given.
 * TLS channels never use shared memory (a local peer is vouched for by the kernel instead).
 */
final class ConnectionFlags {
  @Option(names = "--connect-timeout", paramLabel = "DURATION", converter = GoDuration.class,
      defaultValue = "10s", description = "Wait this long for each connection to be ready before "
          + "the run starts; 0 = do not wait (default: 10s).")
  Duration connectTimeout;

  @Option(names = "--keepalive", paramLabel = "DURATION", converter = GoDuration.class,
      description = "Send keepalive pings after this long without activity (default: none).")
  Duration keepalive;

  @Option(names = "--insecure", description = "Plaintext (the default; exclusive with the TLS "
      + "flags).")
  boolean insecure;

  @Option(names = "--cacert", paramLabel = "FILE", description = "TLS: PEM roots to verify the "
      + "server with (default: the JVM's).")
  Path caCert;

  @Option(names = "--cert", paramLabel = "FILE", description = "TLS: client certificate chain "
      + "(PEM) to present; needs --key.")
  Path cert;

  @Option(names = "--key", paramLabel = "FILE", description = "TLS: private key (PKCS#8 PEM) of "
      + "--cert.")
  Path key;

  @Option(names = "--cname", paramLabel = "NAME", description = "TLS: the server name to "
      + "verify the certificate against (and the call authority).")
  String cname;

  @Option(names = "--skipTLS", description = "TLS without verifying the server's certificate.")
  boolean skipTls;

  /** The checked options, ready to build channels with. */
  record Settings(Duration connectTimeout, Duration keepalive, SslContext sslContext,
      String authority) {
    boolean tls() {
      return sslContext != null;
    }
  }

  Settings settings(CommandLine cl, TransportMode mode) {
    if (connectTimeout.isNegative()) {
      throw new ParameterException(cl, "--connect-timeout must not be negative");
    }
    if (keepalive != null && (keepalive.isNegative() || keepalive.isZero())) {
      throw new ParameterException(cl, "--keepalive must be positive (leave it out for none)");
    }
    boolean tls = caCert != null || cert != null || key != null || cname != null || skipTls;
    if (!tls) {
      return new Settings(connectTimeout, keepalive, null, null);
    }
    if (insecure) {
      throw new ParameterException(cl, "--insecure (plaintext) and the TLS flags (--cacert, "
          + "--cert, --key, --cname, --skipTLS) are exclusive");
    }
    if ((cert == null) != (key == null)) {
      throw new ParameterException(cl, "--cert and --key go together");
    }
    if (skipTls && caCert != null) {
      throw new ParameterException(cl, "--skipTLS verifies nothing: drop --cacert");
    }
    if (mode == TransportMode.SHM_ONLY) {
      throw new ParameterException(cl, "TLS is for the TCP path; shared memory does not use it "
          + "(the kernel vouches for the local peer): use --transport auto or tcp");
    }
    for (Path p : new Path[] {caCert, cert, key}) {
      if (p != null && !Files.isReadable(p)) {
        throw new ParameterException(cl, "cannot read " + p);
      }
    }
    try {
      SslContextBuilder b = GrpcSslContexts.forClient();
      if (skipTls) {
        b.trustManager(InsecureTrustManagerFactory.INSTANCE);
      } else if (caCert != null) {
        b.trustManager(caCert.toFile());
      }
      if (cert != null) {
        b.keyManager(cert.toFile(), key.toFile());
      }
      return new Settings(connectTimeout, keepalive, b.build(), cname);
    } catch (SSLException | IllegalArgumentException e) {
      throw new ParameterException(cl, "bad TLS files: " + e.getMessage());
    }
  }

  /** A channel to {@code target} as {@code settings} say. */
  static ManagedChannel channel(String target, TransportMode mode, int maxInboundMessageSize,
      Settings settings) {
    ShmChannelBuilder b = ShmChannelBuilder.forTarget(target).transportMode(mode)
        .maxInboundMessageSize(maxInboundMessageSize);
    if (settings.tls()) {
      b.useTransportSecurity().configureTcp(n -> n.sslContext(settings.sslContext()));
      if (settings.authority() != null) {
        b.overrideAuthority(settings.authority());
      }
    } else {
      b.usePlaintext();
    }
    if (settings.keepalive() != null) {
      b.keepAliveTime(settings.keepalive().toNanos(), TimeUnit.NANOSECONDS);
    }
    return b.build();
  }

  /**
   * Connects {@code channel} and waits until it is READY; throws IllegalStateException (the
   * tool's exit status 2) if it is not within the timeout, with the last state seen.
   */
  static void awaitReady(ManagedChannel channel, String target, Duration timeout)
      throws InterruptedException {
    if (timeout.isZero()) {
      return;
    }
    long deadline = System.nanoTime() + timeout.toNanos();
    ConnectivityState state = channel.getState(true);
    while (state != ConnectivityState.READY) {
      if (state == ConnectivityState.SHUTDOWN) {
        throw new IllegalStateException("channel to " + target + " shut down while connecting");
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new IllegalStateException("could not connect to " + target + " within "
            + timeout.toMillis() + " ms (--connect-timeout; last state " + state + ")");
      }
      if (state == ConnectivityState.IDLE) {
        channel.getState(true); // a failed attempt leaves it idle: ask again
      }
      CountDownLatch changed = new CountDownLatch(1);
      channel.notifyWhenStateChanged(state, changed::countDown);
      changed.await(Math.min(left, TimeUnit.MILLISECONDS.toNanos(100)), TimeUnit.NANOSECONDS);
      state = channel.getState(false);
    }
  }
}
