package io.grpc.testing.integration;

import com.google.protobuf.ByteString;
import io.grpc.LoadBalancerRegistry;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.internal.JsonParser;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpc.testing.TlsTesting;
import io.grpc.testing.integration.Messages.Payload;
import io.grpc.testing.integration.Messages.ResponseParameters;
import io.grpc.testing.integration.Messages.SimpleRequest;
import io.grpc.testing.integration.Messages.SimpleResponse;
import io.grpc.testing.integration.Messages.StreamingOutputCallRequest;
import io.grpc.testing.integration.Messages.StreamingOutputCallResponse;
import io.grpc.testing.integration.Messages.TestOrcaReport;
import io.grpcshm.InternalShm;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

/**
 * grpc's interop test client (the flags and cases of grpc-java's {@code TestServiceClient}, run by
 * grpc's own {@link AbstractInteropTest}) on a grpc-shm channel: over shared memory to a server
 * on this host, or TCP. {@code --test_case} takes one case, a comma-separated list, or
 * {@code all} (every case that needs no Google credentials or proxy and that grpc-java's own
 * server can pass; see {@link #UNSUPPORTED} and {@link #NOT_IN_ALL}).
 * Exit status: 0 all passed, 1 a case failed, 2 bad command line.
 *
 * <pre>
 *   --server_host=HOST            Default localhost
 *   --server_host_override=HOST   authority to claim (TLS). Default: the host
 *   --server_port=PORT            Default 8080
 *   --test_case=CASE[,CASE]|all   Default empty_unary
 *   --num_times=N                 runs of each case. Default 1
 *   --use_tls=true|false          TLS on the TCP path. Default true
 *   --use_test_ca=true|false      trust grpc's test CA (ca.pem). Default false
 *   --transport=auto|shm|tcp      auto: shared memory when the server is on this host, else TCP;
 *                                 shm: shared memory only; tcp: TCP only. Default auto
 *   --service_config_json=JSON    default service config (orca_* cases default to grpc's test
 *                                 load balancer, test_backend_metrics_load_balancer)
 *   --additional_metadata=k:v;... headers added to every call
 *   --soak_iterations, --soak_max_failures, --soak_per_iteration_max_acceptable_latency_ms,
 *   --soak_overall_timeout_seconds, --soak_min_time_ms_between_rpcs: as grpc's client
 *   --case_timeout_seconds=N      a case running longer fails. Default 120
 * </pre>
 */
public final class ShmInteropClient {
  /** Cases this client does not run, and why: none is about the transport. */
  static final Map<TestCases, String> UNSUPPORTED = unsupported();
  /**
   * Cases {@code all} leaves out because grpc-java's own server fails them (run them by name
   * against a server that can pass them).
   */
  static final Map<TestCases, String> NOT_IN_ALL = notInAll();

  private static final Set<String> FLAGS = Set.of("server_host", "server_host_override",
      "server_port", "test_case", "num_times", "use_tls", "use_test_ca", "transport",
      "service_config_json", "additional_metadata", "soak_iterations", "soak_max_failures",
      "soak_per_iteration_max_acceptable_latency_ms", "soak_overall_timeout_seconds",
      "soak_min_time_ms_between_rpcs", "case_timeout_seconds", "grpc_version");
  private static final String ORCA_SERVICE_CONFIG =
      "{\"loadBalancingConfig\": [{\"test_backend_metrics_load_balancer\": {}}]}";

  private final String serverHost;
  private final String serverHostOverride;
  private final int serverPort;
  private final List<TestCases> cases;
  private final int numTimes;
  private final boolean useTls;
  private final boolean useTestCa;
  private final InteropFlags.Transport transport;
  private final String serviceConfigJson;
  private final Metadata additionalMetadata;
  private final int soakIterations;
  private final int soakMaxFailures;
  private final int soakLatencyMs;
  private final int soakTimeoutSeconds;
  private final int soakMinTimeMs;
  private final int caseTimeoutSeconds;

  private ShmInteropClient(InteropFlags flags, PrintStream out) {
    serverHost = flags.string("server_host", "localhost");
    serverHostOverride = flags.string("server_host_override", null);
    serverPort = flags.integer("server_port", 8080);
    numTimes = flags.integer("num_times", 1);
    useTls = flags.bool("use_tls", true);
    useTestCa = flags.bool("use_test_ca", false);
    transport = flags.transport();
    serviceConfigJson = flags.string("service_config_json", null);
    String extra = flags.string("additional_metadata", "");
    additionalMetadata = extra.isEmpty() ? null : parseMetadata(extra);
    soakIterations = flags.integer("soak_iterations", 10);
    soakMaxFailures = flags.integer("soak_max_failures", 0);
    soakLatencyMs = flags.integer("soak_per_iteration_max_acceptable_latency_ms", 1000);
    soakTimeoutSeconds = flags.integer("soak_overall_timeout_seconds",
        soakIterations * soakLatencyMs / 1000);
    soakMinTimeMs = flags.integer("soak_min_time_ms_between_rpcs", 0);
    caseTimeoutSeconds = flags.integer("case_timeout_seconds", 120);
    if (!flags.string("grpc_version", "2").equals("2")) {
      throw new InteropFlags.UsageException("only grpc version 2 is supported");
    }
    if (useTls && transport == InteropFlags.Transport.SHM) {
      throw new InteropFlags.UsageException("--transport=shm needs --use_tls=false: TLS channels"
          + " do not use shared memory (the kernel vouches for a local peer instead)");
    }
    cases = parseCases(flags.string("test_case", "empty_unary"), out);
  }

  public static void main(String[] args) {
    System.exit(run(args, System.out));
  }

  /** Runs the command line; returns the exit status (0 passed, 1 failed, 2 usage). */
  static int run(String[] args, PrintStream out) {
    ShmInteropClient client;
    try {
      client = new ShmInteropClient(InteropFlags.parse(args, FLAGS), out);
    } catch (InteropFlags.UsageException e) {
      out.println(e.getMessage().isEmpty() ? usage() : e.getMessage() + "\n" + usage());
      return 2;
    }
    CustomBackendMetricsLoadBalancerProvider orcaPolicy =
        new CustomBackendMetricsLoadBalancerProvider();
    LoadBalancerRegistry.getDefaultRegistry().register(orcaPolicy);
    try {
      return client.runAll(out);
    } finally {
      LoadBalancerRegistry.getDefaultRegistry().deregister(orcaPolicy);
    }
  }

  private int runAll(PrintStream out) {
    int failed = 0;
    ExecutorService runner = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "interop-case");
      t.setDaemon(true);
      return t;
    });
    try {
      for (TestCases testCase : cases) {
        for (int i = 0; i < numTimes; i++) {
          out.println("Running test " + testCase);
          long start = System.nanoTime();
          Future<?> run = runner.submit(() -> {
            runCase(testCase);
            return null;
          });
          try {
            run.get(caseTimeoutSeconds, TimeUnit.SECONDS);
            out.printf("PASS %s (%d ms)%n", testCase,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
          } catch (TimeoutException e) {
            run.cancel(true);
            failed++;
            out.printf("FAIL %s: still running after %d s%n", testCase, caseTimeoutSeconds);
          } catch (Exception e) {
            failed++;
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            out.println("FAIL " + testCase + ": " + cause);
            cause.printStackTrace(out);
          }
        }
      }
    } catch (RuntimeException e) {
      failed++;
      e.printStackTrace(out);
    } finally {
      runner.shutdownNow();
    }
    out.println(failed == 0 ? "All tests passed." : failed + " test runs failed.");
    return failed == 0 ? 0 : 1;
  }

  private void runCase(TestCases testCase) throws Exception {
    Tester tester = new Tester(testCase);
    tester.setUp();
    try {
      switch (testCase) {
        case EMPTY_UNARY -> tester.emptyUnary();
        case LARGE_UNARY -> tester.largeUnary();
        case CLIENT_COMPRESSED_UNARY -> tester.clientCompressedUnary(true);
        case CLIENT_COMPRESSED_UNARY_NOPROBE -> tester.clientCompressedUnary(false);
        case SERVER_COMPRESSED_UNARY -> tester.serverCompressedUnary();
        case CLIENT_STREAMING -> tester.clientStreaming();
        case CLIENT_COMPRESSED_STREAMING -> tester.clientCompressedStreaming(true);
        case CLIENT_COMPRESSED_STREAMING_NOPROBE -> tester.clientCompressedStreaming(false);
        case SERVER_STREAMING -> tester.serverStreaming();
        case SERVER_COMPRESSED_STREAMING -> tester.serverCompressedStreaming();
        case PING_PONG -> tester.pingPong();
        case EMPTY_STREAM -> tester.emptyStream();
        case CUSTOM_METADATA -> tester.customMetadata();
        case STATUS_CODE_AND_MESSAGE -> tester.statusCodeAndMessage();
        case SPECIAL_STATUS_MESSAGE -> tester.specialStatusMessage();
        case UNIMPLEMENTED_METHOD -> tester.unimplementedMethod();
        case UNIMPLEMENTED_SERVICE -> tester.unimplementedService();
        case CANCEL_AFTER_BEGIN -> tester.cancelAfterBegin();
        case CANCEL_AFTER_FIRST_RESPONSE -> tester.cancelAfterFirstResponse();
        case TIMEOUT_ON_SLEEPING_SERVER -> tester.timeoutOnSleepingServer();
        case VERY_LARGE_REQUEST -> tester.veryLargeRequest();
        case PICK_FIRST_UNARY -> tester.pickFirstUnary();
        case RPC_SOAK -> soak(tester, current -> current);
        case CHANNEL_SOAK -> soak(tester, tester::replaceChannel);
        case ORCA_PER_RPC -> tester.orcaPerRpc();
        case ORCA_OOB -> tester.orcaOob();
        default -> throw new IllegalArgumentException(
            testCase + " is not supported: " + UNSUPPORTED.get(testCase));
      }
    } finally {
      tester.tearDown();
    }
  }

  private void soak(Tester tester,
      com.google.common.base.Function<ManagedChannel, ManagedChannel> nextChannel)
      throws Exception {
    ManagedChannel shared = tester.createChannelBuilder().build();
    AtomicReference<ManagedChannel> latest = new AtomicReference<>(shared);
    try {
      SoakClient.performSoakTest(serverHost, soakIterations, soakMaxFailures, soakLatencyMs,
          soakMinTimeMs, soakTimeoutSeconds, 271828, 314159, 1, shared, current -> {
            ManagedChannel next = nextChannel.apply(current);
            latest.set(next);
            return next;
          });
    } finally {
      shared.shutdownNow();
      latest.get().shutdownNow();
    }
  }

  private static List<TestCases> parseCases(String value, PrintStream out) {
    List<TestCases> result = new ArrayList<>();
    if (value.equals("all")) {
      for (TestCases c : TestCases.values()) {
        if (UNSUPPORTED.containsKey(c)) {
          out.println("Skipping " + c + ": " + UNSUPPORTED.get(c));
        } else if (NOT_IN_ALL.containsKey(c)) {
          out.println("Skipping " + c + ": " + NOT_IN_ALL.get(c));
        } else {
          result.add(c);
        }
      }
      return result;
    }
    for (String name : value.split(",")) {
      TestCases c;
      try {
        c = TestCases.fromString(name.trim());
      } catch (IllegalArgumentException e) {
        throw new InteropFlags.UsageException("unknown test case " + name);
      }
      if (UNSUPPORTED.containsKey(c)) {
        throw new InteropFlags.UsageException(c + " is not supported: " + UNSUPPORTED.get(c));
      }
      result.add(c);
    }
    return result;
  }

  private static Map<TestCases, String> unsupported() {
    Map<TestCases, String> m = new EnumMap<>(TestCases.class);
    String google = "needs Google credentials (a GCE VM or a service-account key) and a Google"
        + " backend";
    m.put(TestCases.COMPUTE_ENGINE_CREDS, google);
    m.put(TestCases.COMPUTE_ENGINE_CHANNEL_CREDENTIALS, google);
    m.put(TestCases.SERVICE_ACCOUNT_CREDS, google);
    m.put(TestCases.JWT_TOKEN_CREDS, google);
    m.put(TestCases.OAUTH2_AUTH_TOKEN, google);
    m.put(TestCases.PER_RPC_CREDS, google);
    m.put(TestCases.GOOGLE_DEFAULT_CREDENTIALS, google);
    m.put(TestCases.CACHEABLE_UNARY, "needs a caching proxy in front of the server (grpc-java's"
        + " own client marks this case broken: it never sends GET)");
    return m;
  }

  private static Map<TestCases, String> notInAll() {
    Map<TestCases, String> m = new EnumMap<>(TestCases.class);
    String probe = "its probe needs a server that checks whether a request message was"
        + " compressed (grpc-c++ does); grpc-java's API cannot see that, so its server fails the"
        + " probe on any transport. Name the case to run it; the _noprobe variant runs in all";
    m.put(TestCases.CLIENT_COMPRESSED_UNARY, probe);
    m.put(TestCases.CLIENT_COMPRESSED_STREAMING, probe);
    return m;
  }

  private static String usage() {
    return "Usage: ShmInteropClient [--server_host=HOST] [--server_port=PORT]"
        + " [--test_case=CASE[,CASE]|all] [--use_tls=true|false] [--transport=auto|shm|tcp]"
        + " [--num_times=N] [--use_test_ca=true|false] [--server_host_override=HOST]"
        + " [--service_config_json=JSON] [--additional_metadata=k:v;...] [--soak_*=N]"
        + " [--case_timeout_seconds=N]";
  }

  /** grpc's interop suite on a channel this command line describes. */
  private final class Tester extends AbstractInteropTest {
    private final TestCases testCase;

    Tester(TestCases testCase) {
      this.testCase = testCase;
    }

    @Override
    protected ManagedChannelBuilder<?> createChannelBuilder() {
      ShmChannelBuilder builder = ShmChannelBuilder.forAddress(serverHost, serverPort)
          .transportMode(switch (transport) {
            case AUTO -> TransportMode.AUTO;
            case SHM -> TransportMode.SHM_ONLY;
            case TCP -> TransportMode.TCP_ONLY;
          })
          .maxInboundMessageSize(AbstractInteropTest.MAX_MESSAGE_SIZE)
          .configureTcp(n -> n.flowControlWindow(AbstractInteropTest.TEST_FLOW_CONTROL_WINDOW));
      if (useTls) {
        builder.useTransportSecurity();
        if (useTestCa) {
          builder.configureTcp(n -> {
            try (InputStream ca = TlsTesting.loadCert("ca.pem")) {
              n.sslContext(GrpcSslContexts.forClient().trustManager(ca).build());
            } catch (java.io.IOException e) {
              throw new IllegalStateException("cannot load grpc's test CA", e);
            }
          });
        }
      } else {
        builder.usePlaintext();
      }
      if (serverHostOverride != null) {
        builder.overrideAuthority(serverHostOverride);
      }
      String config = serviceConfigJson != null ? serviceConfigJson
          : testCase == TestCases.ORCA_PER_RPC || testCase == TestCases.ORCA_OOB
              ? ORCA_SERVICE_CONFIG : null;
      if (config != null) {
        try {
          @SuppressWarnings("unchecked")
          Map<String, ?> parsed = (Map<String, ?>) JsonParser.parse(config);
          builder.disableServiceConfigLookUp().defaultServiceConfig(parsed);
        } catch (java.io.IOException | ClassCastException e) {
          throw new IllegalArgumentException("--service_config_json is not a JSON object", e);
        }
      }
      if (additionalMetadata != null) {
        builder.intercept(MetadataUtils.newAttachHeadersInterceptor(additionalMetadata));
      }
      // grpc's census module is replaced by the suite's own recording interceptor.
      InternalShm.setStatsEnabled(builder, false);
      return builder.intercept(createCensusStatsClientInterceptor());
    }

    @Override
    protected boolean metricsExpected() {
      return false; // message sizes differ by peer language (as in grpc's TestServiceClient)
    }

    @Override
    protected int operationTimeoutMillis() {
      return 15000;
    }

    ManagedChannel replaceChannel(ManagedChannel current) {
      current.shutdownNow();
      try {
        current.awaitTermination(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while replacing the channel", e);
      }
      return createChannel();
    }

    /** All calls of a pick_first channel reach the same server (the id it fills in). */
    void pickFirstUnary() throws Exception {
      SimpleRequest request = SimpleRequest.newBuilder()
          .setResponseSize(1)
          .setFillServerId(true)
          .setPayload(Payload.newBuilder().setBody(ByteString.copyFrom(new byte[1])))
          .build();
      SimpleResponse first = blockingStub.unaryCall(request);
      Thread.sleep(5000); // time for other backends to connect, were the policy not pick_first
      for (int i = 0; i < 100; i++) {
        check(blockingStub.unaryCall(request).getServerId().equals(first.getServerId()),
            "call " + i + " reached another server than the first call");
      }
    }

    /** The server's per-call ORCA report reaches the client's load balancer. */
    void orcaPerRpc() {
      AtomicReference<TestOrcaReport> received = new AtomicReference<>();
      TestOrcaReport sent = TestOrcaReport.newBuilder()
          .setCpuUtilization(0.8210)
          .setMemoryUtilization(0.5847)
          .putRequestCost("cost", 3456.32)
          .putUtilization("util", 0.30499)
          .build();
      blockingStub.withOption(TestServiceClient.ORCA_RPC_REPORT_KEY, received)
          .unaryCall(SimpleRequest.newBuilder().setOrcaPerQueryReport(sent).build());
      check(sent.equals(received.get()), "per-call report: expected " + sent + ", got "
          + received.get());
    }

    /** Out-of-band ORCA reports the server is told to publish reach the client's balancer. */
    void orcaOob() throws Exception {
      BlockingQueue<Object> responses = new LinkedBlockingQueue<>();
      Object done = new Object();
      StreamObserver<StreamingOutputCallRequest> requests =
          asyncStub.fullDuplexCall(new StreamObserver<StreamingOutputCallResponse>() {
            @Override
            public void onNext(StreamingOutputCallResponse value) {
              responses.add(value);
            }

            @Override
            public void onError(Throwable t) {
              responses.add(t);
            }

            @Override
            public void onCompleted() {
              responses.add(done);
            }
          });
      TestOrcaReport first = TestOrcaReport.newBuilder()
          .setCpuUtilization(0.8210)
          .setMemoryUtilization(0.5847)
          .putUtilization("util", 0.30499)
          .build();
      TestOrcaReport second = TestOrcaReport.newBuilder()
          .setCpuUtilization(0.29309)
          .setMemoryUtilization(0.2)
          .putUtilization("util", 0.2039)
          .build();
      for (TestOrcaReport report : List.of(first, second)) {
        requests.onNext(StreamingOutputCallRequest.newBuilder()
            .setOrcaOobReport(report)
            .addResponseParameters(ResponseParameters.newBuilder().setSize(1))
            .build());
        Object response = responses.poll(30, TimeUnit.SECONDS);
        check(response instanceof StreamingOutputCallResponse, "expected a response, got "
            + response);
        AtomicReference<TestOrcaReport> received = new AtomicReference<>();
        int tries = 0;
        // The server publishes its out-of-band report every second.
        while (!report.equals(received.get()) && tries++ < 5) {
          Thread.sleep(1000);
          blockingStub.withOption(TestServiceClient.ORCA_OOB_REPORT_KEY, received)
              .emptyCall(EMPTY);
        }
        check(report.equals(received.get()), "out-of-band report: expected " + report
            + ", got " + received.get());
      }
      requests.onCompleted();
      Object end = responses.poll(30, TimeUnit.SECONDS);
      check(end == done, "expected the call to complete, got " + end);
    }
  }

  private static void check(boolean condition, String failure) {
    if (!condition) {
      throw new AssertionError(failure);
    }
  }

  private static Metadata parseMetadata(String pairs) {
    Metadata metadata = new Metadata();
    for (String pair : pairs.split(";", -1)) {
      String[] kv = pair.split(":", 2);
      if (kv.length != 2) {
        throw new InteropFlags.UsageException(
            "--additional_metadata must be k:v pairs separated by ';', not " + pairs);
      }
      metadata.put(Metadata.Key.of(kv[0], Metadata.ASCII_STRING_MARSHALLER), kv[1]);
    }
    return metadata;
  }
}
