package io.grpcshm.examples;

import com.sun.management.OperatingSystemMXBean;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyChannelBuilder;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.childjvm.ChildJvm;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * Unary calls with a small and a large request (each answered by a 100-byte ack) over three
 * transports in one run: grpc-shm shared memory to a server in a child JVM, stock grpc Netty TCP
 * loopback to a stock {@code NettyServerBuilder} server in another child JVM, and grpc's
 * in-process transport inside this JVM. Same service, same marshaller, default executors.
 *
 * <p>Transports take turns in rounds (rotating who goes first) so that machine noise spreads
 * over all of them; the first rounds only warm up. Options: {@code --help}.
 */
@Command(name = "EchoBenchmark", mixinStandardHelpOptions = true,
    description = "Unary echo over shared memory, Netty TCP and in-process, side by side.")
public final class EchoBenchmark implements Callable<Integer> {
  @Option(names = "--rounds", description = "measured rounds (${DEFAULT-VALUE})")
  int rounds = 20;

  @Option(names = "--warmup-rounds", description = "rounds before measuring (${DEFAULT-VALUE})")
  int warmupRounds = 8;

  @Option(names = "--small-calls", description = "small calls per batch (${DEFAULT-VALUE})")
  int smallCalls = 500;

  @Option(names = "--large-calls", description = "large calls per batch (${DEFAULT-VALUE})")
  int largeCalls = 6;

  @Option(names = "--small-bytes", description = "small request size (${DEFAULT-VALUE})")
  int smallBytes = 100;

  @Option(names = "--large-bytes", description = "large request size (${DEFAULT-VALUE})")
  int largeBytes = 16 << 20;

  @Spec CommandSpec spec;

  EchoBenchmark() {}

  private record Options(int rounds, int warmupRounds, int smallCalls, int largeCalls,
      int smallBytes, int largeBytes) {}

  /**
   * One measured workload: a request size and the method that receives it. The large request is
   * measured three ways: parsed into a fresh byte[] (what a plain byte[] marshaller does;
   * allocating and zeroing 16 MiB per call then dominates on every transport), digested as a
   * stream through a small reused buffer (the transport's cost with a copy out), and checksummed
   * over every byte in place where the transport exposes its buffers (the transport's cost for a
   * consumer that reads without copying).
   */
  private record Case(String label, int size, MethodDescriptor<byte[], byte[]> method) {}

  /** A transport under test; {@code server} is null when the server runs in this JVM. */
  private record Contender(String label, Route route, ChildJvm server) {}

  /** What one (transport, payload) pair accumulated over all measured rounds. */
  private static final class Cell {
    final Latencies latencies = new Latencies();
    long wallNanos;
    long clientCpuNanos;
    long serverCpuNanos;
    long gcEvents;
    long minorFaults;

    void add(Cell other) {
      minorFaults += other.minorFaults;
      latencies.add(other.latencies);
      wallNanos += other.wallNanos;
      clientCpuNanos += other.clientCpuNanos;
      serverCpuNanos += other.serverCpuNanos;
      gcEvents += other.gcEvents;
    }
  }

  /** Transports in turn, a different one first each round, so none always follows the same. */
  private static List<Contender> rotate(List<Contender> contenders, int round) {
    List<Contender> order = new ArrayList<>(contenders);
    java.util.Collections.rotate(order, -(round % order.size()));
    return order;
  }

  private static final OperatingSystemMXBean OS =
      (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  public static void main(String[] args) {
    Mains.runBounded(new EchoBenchmark(), Duration.ofMinutes(10), args);
  }


  @Override
  public Integer call() throws Exception {
    if (rounds < 1 || warmupRounds < 0 || smallCalls < 1 || largeCalls < 1 || smallBytes < 0
        || largeBytes < 0) {
      throw new ParameterException(spec.commandLine(), "need --rounds, --small-calls and"
          + " --large-calls >= 1, the others >= 0");
    }
    run(new Options(rounds, warmupRounds, smallCalls, largeCalls, smallBytes, largeBytes));
    return 0;
  }


  private static void run(Options options) throws Exception {
    printSetup(options);
    String large = Latencies.formatSize(options.largeBytes());
    List<Case> sizes = List.of(
        new Case(Latencies.formatSize(options.smallBytes()), options.smallBytes(), EchoService.ACK),
        new Case(large + " fresh", options.largeBytes(), EchoService.ACK),
        new Case(large + " stream", options.largeBytes(), EchoService.DIGEST),
        new Case(large + " in place", options.largeBytes(), EchoService.CHECKSUM));
    Map<String, Cell> cells = new LinkedHashMap<>();
    List<String> labels = new ArrayList<>();
    String idleReport;
    String inProcessName = "echo-bench-" + ProcessHandle.current().pid();
    Server inProcessServer = InProcessServerBuilder.forName(inProcessName)
        .addService(EchoService.definition())
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
        .build().start();
    try (ChildJvm shmServer = ExitWithParent.startServer("shm-server", EchoServer.class, "shm");
         ChildJvm nettyServer = ExitWithParent.startServer("netty-server", EchoServer.class, "netty");
         Route shm = shmRoute(shmServer.awaitPort(Duration.ofSeconds(60)));
         Route tcp = nettyRoute(nettyServer.awaitPort(Duration.ofSeconds(60)));
         Route inProcess = inProcessRoute(inProcessName)) {
      List<Contender> contenders = List.of(
          new Contender("shm", shm, shmServer),
          new Contender("tcp", tcp, nettyServer),
          new Contender("inproc", inProcess, null));
      contenders.forEach(c -> labels.add(c.label()));
      runRounds(options, sizes, contenders, cells);
      idleReport = idleCpu(shmServer, nettyServer);
    } finally {
      inProcessServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    printResults(options, sizes, labels, cells);
    System.out.println(idleReport);
  }

  private static void runRounds(Options options, List<Case> sizes, List<Contender> contenders,
      Map<String, Cell> cells) {
    byte[][] requests = new byte[sizes.size()][];
    byte[][] acks = new byte[sizes.size()][];
    for (int s = 0; s < sizes.size(); s++) {
      requests[s] = new byte[sizes.get(s).size()];
      new Random(sizes.get(s).size()).nextBytes(requests[s]);
      acks[s] = EchoService.expectedAck(sizes.get(s).method(), requests[s]);
    }
    int total = options.warmupRounds() + options.rounds();
    long start = System.nanoTime();
    for (int round = 0; round < total; round++) {
      boolean measured = round >= options.warmupRounds();
      StringBuilder progress = new StringBuilder();
      for (int s = 0; s < sizes.size(); s++) {
        Case k = sizes.get(s);
        int calls = k.size() <= 64 << 10 ? options.smallCalls() : options.largeCalls();
        progress.append(progress.isEmpty() ? "" : "; ").append(k.label());
        for (Contender c : rotate(contenders, round)) {
          Cell cell = new Cell();
          batch(c, k.method(), requests[s], acks[s], calls, cell);
          progress.append(' ').append(c.label()).append(' ')
              .append(Latencies.format(cell.latencies.p50()));
          if (measured) {
            cells.computeIfAbsent(key(c.label(), k), x -> new Cell()).add(cell);
          }
        }
      }
      // Per-round medians show whether the JIT has settled and how noisy the machine is.
      System.out.printf("  round %2d/%d%s %5.1f s, p50: %s%n", round + 1, total,
          measured ? "          " : " (warm-up)", (System.nanoTime() - start) / 1e9, progress);
    }
  }

  private static void batch(Contender c, MethodDescriptor<byte[], byte[]> method, byte[] request,
      byte[] ack, int calls, Cell cell) {
    long clientCpu = OS.getProcessCpuTime();
    long serverCpu = c.server() == null ? 0 : c.server().cpuTime().toNanos();
    long gc = ThreadCpu.gcEvents();
    long faults = minorFaults(c);
    long wall = System.nanoTime();
    for (int i = 0; i < calls; i++) {
      cell.latencies.record(c.route().call(method, request, ack));
    }
    cell.wallNanos += System.nanoTime() - wall;
    cell.clientCpuNanos += OS.getProcessCpuTime() - clientCpu;
    cell.serverCpuNanos += c.server() == null ? 0 : c.server().cpuTime().toNanos() - serverCpu;
    cell.gcEvents += ThreadCpu.gcEvents() - gc;
    cell.minorFaults += minorFaults(c) - faults;
  }

  /** Page faults of the client and (if any) server process: fresh, unreused memory shows here. */
  private static long minorFaults(Contender c) {
    return ThreadCpu.minorFaults(ProcessHandle.current().pid())
        + (c.server() == null ? 0 : ThreadCpu.minorFaults(c.server().pid()));
  }

  /** CPU used by each process while every channel is open and no call runs (spinning shows). */
  private static String idleCpu(ChildJvm shmServer, ChildJvm nettyServer)
      throws InterruptedException {
    long self = OS.getProcessCpuTime();
    long shm = shmServer.cpuTime().toNanos();
    long netty = nettyServer.cpuTime().toNanos();
    long wall = System.nanoTime();
    Thread.sleep(2_000);
    double seconds = (System.nanoTime() - wall) / 1e9;
    return String.format("idle %.0f s with channels open: CPU this JVM %.0f%%, shm server %.0f%%,"
            + " netty server %.0f%% of one core%n"
            + "busiest threads, this JVM: %s%n"
            + "busiest threads, shm server: %s%n"
            + "busiest threads, netty server: %s",
        seconds, (OS.getProcessCpuTime() - self) / seconds / 1e7,
        (shmServer.cpuTime().toNanos() - shm) / seconds / 1e7,
        (nettyServer.cpuTime().toNanos() - netty) / seconds / 1e7,
        ThreadCpu.describe(ProcessHandle.current().pid(), 5),
        ThreadCpu.describe(shmServer.pid(), 5), ThreadCpu.describe(nettyServer.pid(), 5));
  }

  private static Route shmRoute(int port) {
    TransportPathRecorder paths = new TransportPathRecorder();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY)
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
        .intercept(paths).build();
    return new Route("shm", channel, paths, TransportPath.SHARED_MEMORY);
  }

  /** Stock grpc on both ends: NettyChannelBuilder to a NettyServerBuilder server. */
  private static Route nettyRoute(int port) {
    TransportPathRecorder paths = new TransportPathRecorder();
    ManagedChannel channel = NettyChannelBuilder.forAddress("localhost", port).usePlaintext()
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
        .intercept(paths).build();
    return new Route("tcp", channel, paths, TransportPath.TCP);
  }

  private static Route inProcessRoute(String name) {
    TransportPathRecorder paths = new TransportPathRecorder();
    ManagedChannel channel = InProcessChannelBuilder.forName(name)
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
        .intercept(paths).build();
    return new Route("inproc", channel, paths, TransportPath.OTHER);
  }

  private static void printSetup(Options o) {
    System.out.println("EchoBenchmark " + Instant.now() + ", " + Runtime.getRuntime()
        .availableProcessors() + " CPUs, Java " + Runtime.version() + ", flags "
        + ManagementFactory.getRuntimeMXBean().getInputArguments());
    System.out.printf("unary, %s and %s requests, %d-byte ack; %d rounds (+%d warm-up) of %d"
            + " small / %d large calls per transport; one call at a time%n",
        Latencies.formatSize(o.smallBytes()), Latencies.formatSize(o.largeBytes()),
        EchoService.ACK_BYTES, o.rounds(), o.warmupRounds(), o.smallCalls(), o.largeCalls());
  }

  private static void printResults(Options o, List<Case> sizes, List<String> labels,
      Map<String, Cell> cells) {
    System.out.println();
    System.out.printf("%-12s %-9s %6s %9s %9s %9s %8s %8s %5s %4s %11s%n", "payload",
        "transport", "calls", "p50", "p99", "mean", "MB/s", "CPU/call", "cores", "GCs",
        "faults/call");
    for (Case k : sizes) {
      int size = k.size();
      for (String label : labels) {
        Cell c = cells.get(key(label, k));
        long n = c.latencies.count();
        long cpu = c.clientCpuNanos + c.serverCpuNanos;
        System.out.printf("%-12s %-9s %6d %9s %9s %9s %8.1f %8s %5.2f %4d %11.1f%n",
            k.label(), label, n, Latencies.format(c.latencies.p50()),
            Latencies.format(c.latencies.p99()), Latencies.format(c.wallNanos / n),
            Latencies.megabytesPerSecond(size, c.latencies.p50()), Latencies.format(cpu / n),
            (double) cpu / c.wallNanos, c.gcEvents, (double) c.minorFaults / n);
      }
    }
    System.out.println("MB/s = request bytes / p50. CPU/call = CPU of client JVM + server JVM"
        + " (server at 10 ms tick resolution; both include JIT and GC threads) per call;"
        + " cores = that CPU / wall time; GCs = collections in the client JVM; faults = minor"
        + " page faults of client + server (4 KiB each).");
    printVerdict(sizes, cells);
    printMarkdown(sizes, cells);
  }

  private static void printVerdict(List<Case> sizes, Map<String, Cell> cells) {
    System.out.println();
    Case small = sizes.get(0);
    double smallRatio = p50(cells, "shm", small) / p50(cells, "tcp", small);
    System.out.printf("%s p50 latency shm/tcp = %.2fx (target <= 0.3x): %s%n",
        small.label(), smallRatio, smallRatio <= 0.3 ? "MET" : "NOT MET");
    for (Case large : sizes.subList(1, sizes.size())) {
      double speedup = p50(cells, "tcp", large) / p50(cells, "shm", large);
      System.out.printf("%s throughput shm/tcp = %.1fx (target >= 8x): %s%n",
          large.label(), speedup, speedup >= 8 ? "MET" : "NOT MET");
    }
    for (Case k : sizes) {
      System.out.printf("%s p50 latency shm/in-process = %.2fx%n", k.label(),
          p50(cells, "shm", k) / p50(cells, "inproc", k));
    }
  }

  private static void printMarkdown(List<Case> sizes, Map<String, Cell> cells) {
    System.out.println();
    System.out.println("| request (ack 100 B) | shm p50 / p99 | Netty TCP p50 / p99"
        + " | in-process p50 / p99 | shm / TCP MB/s | shm/TCP p50 | shm/in-process p50 |");
    System.out.println("|---|---|---|---|---|---|---|");
    for (Case k : sizes) {
      System.out.printf("| %s | %s | %s | %s | %.1f / %.1f | %.2fx | %.2fx |%n",
          k.label(), both(cells, "shm", k), both(cells, "tcp", k), both(cells, "inproc", k),
          Latencies.megabytesPerSecond(k.size(), (long) p50(cells, "shm", k)),
          Latencies.megabytesPerSecond(k.size(), (long) p50(cells, "tcp", k)),
          p50(cells, "shm", k) / p50(cells, "tcp", k),
          p50(cells, "shm", k) / p50(cells, "inproc", k));
    }
  }

  private static String both(Map<String, Cell> cells, String label, Case k) {
    Latencies l = cells.get(key(label, k)).latencies;
    return Latencies.format(l.p50()) + " / " + Latencies.format(l.p99());
  }

  private static double p50(Map<String, Cell> cells, String label, Case k) {
    return cells.get(key(label, k)).latencies.p50();
  }

  private static String key(String label, Case k) {
    return label + "/" + k.label();
  }

}
