package io.grpc.testing.integration;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.services.MetricRecorder;
import io.grpc.testing.TlsTesting;
import io.grpc.xds.orca.OrcaMetricReportingServerInterceptor;
import io.grpc.xds.orca.OrcaServiceImpl;
import io.grpcshm.ShmServerBuilder;
import java.io.InputStream;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * grpc's interop test server (the services and flags of grpc-java's {@code TestServiceServer})
 * on a grpc-shm server: TCP on {@code --port}, plus shared memory for clients on this host unless
 * {@code --transport=tcp}. Any language's interop client can test it over TCP; grpc-shm clients
 * on this host reach it over shared memory. Prints {@code Server started on port N}; SIGTERM or
 * SIGINT shut it down gracefully.
 *
 * <pre>
 *   --port=PORT              TCP port (0: ephemeral). Default 8080
 *   --use_tls=true|false     TLS on the TCP path with grpc's test certificate. Default true
 *   --transport=auto|shm|tcp auto and shm: also serve shared memory; tcp: TCP only. Default auto
 * </pre>
 */
public final class ShmInteropServer {
  private static final Set<String> FLAGS = Set.of("port", "use_tls", "transport", "grpc_version");

  private final Server server;
  private final ScheduledExecutorService executor;

  private ShmInteropServer(Server server, ScheduledExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  public static void main(String[] args) throws Exception {
    ShmInteropServer s;
    try {
      s = start(args);
    } catch (InteropFlags.UsageException e) {
      System.err.println(e.getMessage().isEmpty() ? usage() : e.getMessage() + "\n" + usage());
      System.exit(1);
      return;
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      System.out.println("Shutting down");
      s.stop();
    }, "interop-server-shutdown"));
    System.out.println("Server started on port " + s.port());
    System.out.flush();
    s.server.awaitTermination();
  }

  /** Parses {@code args} and starts the server. */
  static ShmInteropServer start(String[] args) throws Exception {
    InteropFlags flags = InteropFlags.parse(args, FLAGS);
    if (!flags.string("grpc_version", "2").equals("2")) {
      throw new InteropFlags.UsageException("only grpc version 2 is supported");
    }
    int port = flags.integer("port", 8080);
    boolean useTls = flags.bool("use_tls", true);
    InteropFlags.Transport transport = flags.transport();

    ScheduledExecutorService executor = Executors.newSingleThreadScheduledExecutor();
    MetricRecorder metricRecorder = MetricRecorder.newInstance();
    ShmServerBuilder builder = ShmServerBuilder.forPort(port)
        .sharedMemoryEnabled(transport != InteropFlags.Transport.TCP)
        .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE)
        .addService(ServerInterceptors.intercept(
            new TestServiceImpl(executor, metricRecorder), TestServiceImpl.interceptors()))
        .addService(OrcaServiceImpl.createService(executor, metricRecorder, 1, TimeUnit.SECONDS))
        .intercept(OrcaMetricReportingServerInterceptor.create(metricRecorder));
    if (useTls) {
      try (InputStream cert = TlsTesting.loadCert("server1.pem");
          InputStream key = TlsTesting.loadCert("server1.key")) {
        builder.useTransportSecurity(cert, key);
      }
    }
    try {
      return new ShmInteropServer(builder.build().start(), executor);
    } catch (Exception e) {
      executor.shutdownNow();
      throw e;
    }
  }

  int port() {
    return server.getPort();
  }

  void stop() {
    server.shutdown();
    try {
      if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    } finally {
      executor.shutdownNow();
    }
  }

  private static String usage() {
    return "Usage: ShmInteropServer [--port=PORT] [--use_tls=true|false]"
        + " [--transport=auto|shm|tcp]";
  }
}
