package io.grpcshm.examples;

import com.sun.management.OperatingSystemMXBean;
import com.sun.management.ThreadMXBean;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCalls;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

/**
 * What small calls cost on each transport, in one run: grpc-shm to a server in a child JVM,
 * stock grpc over Netty on a Unix domain socket and on TCP loopback (servers in child JVMs), and
 * grpc's in-process transport in this JVM (gRPC's own cost with no transport: the floor).
 *
 * <ul>
 *   <li>unary 100 B and 1 KiB echo, {@code --concurrency} calls in flight (closed loop, blocking
 *       stubs): calls/s, CPU per call in this (client) JVM and in the server JVM, bytes
 *       allocated per call in this JVM;
 *   <li>unary 100 B, one call at a time: p50 and p99;
 *   <li>1 KiB bidi streaming on one stream, the client sending as fast as flow control allows,
 *       the server echoing: messages/s;
 *   <li>grpc-shm only: {@code --idle-connections} idle connections to one server (threads added
 *       in each process, CPU while idle, connect p50), then as many TCP and in-process channels
 *       for their connect p50 beside it, and an idle connection's shared memory
 *       after a 64 MiB call, before and after {@code --idle-wait} seconds, with the first-touch
 *       cost the next large call pays.
 * </ul>
 *
 * Transports take turns in rounds, a different one first each round; every server is warmed on
 * every workload before the first measured round.
 */
@Command(name = "small-call-benchmark", mixinStandardHelpOptions = true)
public final class SmallCallBenchmark implements Callable<Integer> {
  @Option(names = "--seconds", description = "seconds per workload per round (${DEFAULT-VALUE})")
  int seconds = 4;

  @Option(names = "--rounds", description = "measured rounds (${DEFAULT-VALUE})")
  int rounds = 3;

  @Option(names = "--concurrency", description = "calls in flight (${DEFAULT-VALUE})")
  int concurrency = 8;

  @Option(names = "--idle-connections", description = "0 skips the test (${DEFAULT-VALUE})")
  int idleConnections = 1000;

  @Option(names = "--connect-warmup", description = "connects (each closed again) per transport"
      + " before its connect time is measured (${DEFAULT-VALUE}); fewer leave the JIT compiling"
      + " the connect path while it is timed")
  int connectWarmup = 10_000;

  @Option(names = "--max-warmup-passes", description = "warm-up passes over every transport and"
      + " workload at most (${DEFAULT-VALUE}; at least 2): they stop once the JIT is quiet")
  int maxWarmupPasses = 8;

  @Option(names = "--idle-wait", description = "seconds an idle connection is left (${DEFAULT-VALUE})")
  int idleWait = 12;

  @Option(names = "--transports", split = ",",
      description = "subset of shm,uds,tcp,inproc (${DEFAULT-VALUE})")
  List<String> transports = List.of("shm", "uds", "tcp", "inproc");

  @Option(names = "--shm-b", paramLabel = "JVM_OPTIONS",
      description = "adds a second grpc-shm server, column shm-b, whose JVM gets these options"
          + " (space-separated, e.g. \"-Dio.grpcshm.relay=false\"): two settings compared in"
          + " the same rounds, which this noisy host needs; off by default")
  String shmB;

  @Option(names = "--workloads", split = ",",
      description = "subset of unary100,unary1k,latency,bidi (${DEFAULT-VALUE}); a profile of one"
          + " workload is easier to read")
  List<String> workloads = List.of("unary100", "unary1k", "latency", "bidi");

  @Spec CommandSpec spec;

  private static final OperatingSystemMXBean OS =
      (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
  private static final ThreadMXBean THREADS = (ThreadMXBean) ManagementFactory.getThreadMXBean();
  private static final int UDS_NUMBER = (int) ProcessHandle.current().pid();
  /** The in-process server's name. */
  private static final String IN_PROCESS_NAME =
      "small-call-benchmark-" + ProcessHandle.current().pid();
  /** Warm-up connects summarised at each end (their p50), to show how far the JIT got. */
  private static final int WARMUP_SAMPLE = 300;
  /** A warm-up pass whose JIT CPU (both JVMs) stayed under this share of a core ends warm-up. */
  private static final double JIT_QUIET_PERCENT = 2.0;
  /** Hand-offs timed for the host's hand-off cost, printed beside the table (~1.5 s here). */
  private static final int HAND_OFFS = 100_000;

  /** A transport under test: a channel, and the server's JVM (null: in this JVM). */
  private record Contender(String label, ManagedChannel channel, ChildJvm server) {
    long serverCpuNanos() {
      return server == null ? 0 : server.cpuTime().toNanos();
    }

    /** Per-thread counters of this JVM and of the server's, for {@link Threads#since}. */
    Threads threads() {
      return new Threads(ThreadCpu.counters(SELF),
          server == null ? Map.of() : ThreadCpu.counters(server.pid()));
    }

    ThreadCpu.Activity serverSince(Threads before) {
      return server == null ? new ThreadCpu.Activity(0, 0)
          : ThreadCpu.since(server.pid(), before.server());
    }
  }

  /** Both JVMs' threads at one moment: context switches and JIT CPU are counted per thread. */
  private record Threads(Map<String, ThreadCpu.Counters> client,
      Map<String, ThreadCpu.Counters> server) {
    ThreadCpu.Activity clientSince() {
      return ThreadCpu.since(SELF, client);
    }
  }

  private static final long SELF = ProcessHandle.current().pid();

  /** Sums over the measured rounds of one (workload, transport) cell. */
  private static final class Cell {
    long operations;
    long wallNanos;
    long clientCpuNanos;
    long serverCpuNanos;
    long allocatedBytes;
    long clientSwitches;
    long serverSwitches;
    /** CPU of both JVMs' JIT compiler threads meanwhile: a cell measured while compiling. */
    long jitMillis;
    final Latencies latencies = new Latencies();

    double perSecond() {
      return operations * 1e9 / Math.max(1, wallNanos);
    }

    double clientCpuMicros() {
      return clientCpuNanos / 1e3 / Math.max(1, operations);
    }

    double serverCpuMicros() {
      return serverCpuNanos / 1e3 / Math.max(1, operations);
    }

    double allocatedPerOperation() {
      return allocatedBytes / (double) Math.max(1, operations);
    }

    double clientSwitchesPer() {
      return clientSwitches / (double) Math.max(1, operations);
    }

    double serverSwitchesPer() {
      return serverSwitches / (double) Math.max(1, operations);
    }

    /** JIT CPU meanwhile, as a share of one core (%). */
    double jitPercent() {
      return jitMillis * 1e8 / Math.max(1, wallNanos);
    }

    void add(ThreadCpu.Activity client, ThreadCpu.Activity server) {
      clientSwitches += client.switches();
      serverSwitches += server.switches();
      jitMillis += client.compilerMillis() + server.compilerMillis();
    }
  }

  public static void main(String[] args) {
    Mains.runBounded(new SmallCallBenchmark(), Duration.ofMinutes(30), args);
  }


  @Override
  public Integer call() throws Exception {
    List<String> keys = List.of("unary100", "unary1k", "latency", "bidi");
    for (String w : this.workloads) {
      if (!keys.contains(w)) {
        throw new CommandLine.ParameterException(spec.commandLine(),
            "unknown workload " + w + " (expected one of " + keys + ")");
      }
    }
    if (connectWarmup < 0 || idleConnections < 0) {
      throw new CommandLine.ParameterException(spec.commandLine(),
          "--connect-warmup and --idle-connections must not be negative");
    }
    if (shmB != null && (shmB.isBlank() || !transports.contains("shm"))) {
      throw new CommandLine.ParameterException(spec.commandLine(),
          "--shm-b needs JVM options and the shm transport");
    }
    System.out.printf("SmallCallBenchmark %s: %d cores, java %s, %d round(s) x %d s per workload,"
        + " %d in flight%n", Instant.now(), Runtime.getRuntime().availableProcessors(),
        Runtime.version(), rounds, seconds, concurrency);
    // Before any server starts, so nothing else runs in this JVM.
    double handOffMicros = HandOffCost.cpuMicrosPerHandOff(HAND_OFFS);
    List<Contender> contenders = new ArrayList<>();
    List<AutoCloseable> resources = new ArrayList<>();
    try {
      for (String t : transports) {
        contenders.add(start(t, resources));
        if (t.equals("shm") && shmB != null) {
          contenders.add(start("shm-b", resources));
        }
      }
      byte[] small = payload(100);
      byte[] kib = payload(1024);
      Map<String, Map<String, Cell>> table = new LinkedHashMap<>();
      String[] all = {"100 B unary c=" + concurrency, "1 KiB unary c=" + concurrency,
          "100 B unary c=1", "1 KiB bidi stream"};
      boolean[] on = new boolean[4];
      for (int i = 0; i < 4; i++) {
        on[i] = this.workloads.contains(keys.get(i));
      }
      String[] workloads = java.util.stream.IntStream.range(0, 4).filter(i -> on[i])
          .mapToObj(i -> all[i]).toArray(String[]::new);
      for (String w : workloads) {
        table.put(w, new LinkedHashMap<>());
        for (Contender c : contenders) {
          table.get(w).put(c.label(), new Cell());
        }
      }
      System.out.println("warming up every server on every workload...");
      // The JIT keeps compiling well after two passes (grpc's call path and ours reach C2 at
      // different counts), and process CPU includes the compiler threads': a cell measured while
      // they work is charged for them, mostly the first of round 1. So passes go on until both
      // JVMs' compilers used under JIT_QUIET_PERCENT of a core over a whole pass, or up to
      // --max-warmup-passes; the table prints what they used during each cell anyway.
      for (int warm = 0; warm < Math.max(2, maxWarmupPasses); warm++) {
        List<Threads> before = contenders.stream().map(Contender::threads).toList();
        long passStart = System.nanoTime();
        for (Contender c : contenders) {
          if (on[0]) {
            closedLoop(c, small, concurrency, Math.max(2, seconds / 2), new Cell());
          }
          if (on[1]) {
            closedLoop(c, kib, concurrency, 1, new Cell());
          }
          if (on[2]) {
            closedLoop(c, small, 1, 1, new Cell());
          }
          if (on[3]) {
            bidi(c, kib, 1, new Cell());
          }
        }
        long jit = before.getFirst().clientSince().compilerMillis();
        for (int i = 0; i < contenders.size(); i++) {
          jit += contenders.get(i).serverSince(before.get(i)).compilerMillis();
        }
        double jitPercent = jit * 1e8 / (System.nanoTime() - passStart);
        System.out.printf("warm-up pass %d: JIT used %.1f%% of a core%n", warm + 1, jitPercent);
        if (warm >= 1 && jitPercent < JIT_QUIET_PERCENT) {
          break;
        }
      }
      for (int round = 0; round < rounds; round++) {
        List<Contender> order = new ArrayList<>(contenders);
        java.util.Collections.rotate(order, -round);
        for (Contender c : order) {
          if (on[0]) {
            closedLoop(c, small, concurrency, seconds, table.get(all[0]).get(c.label()));
          }
          if (on[1]) {
            closedLoop(c, kib, concurrency, seconds, table.get(all[1]).get(c.label()));
          }
          if (on[2]) {
            closedLoop(c, small, 1, seconds, table.get(all[2]).get(c.label()));
          }
          if (on[3]) {
            bidi(c, kib, seconds, table.get(all[3]).get(c.label()));
          }
        }
        System.out.println("round " + (round + 1) + " of " + rounds + " done");
      }
      // Again, the servers idle: the host's hand-off cost can change within a run (3.7 us in
      // one run here, 11-13 us in the others), and the ratios to TCP move with it.
      double handOffAfter = HandOffCost.cpuMicrosPerHandOff(HAND_OFFS);
      print(table, workloads, handOffMicros, handOffAfter);
      transportAllocation(contenders, small, kib, on[0], on[3]);
      Contender shm = contenders.stream().filter(c -> c.label().equals("shm")).findFirst()
          .orElse(null);
      if (shm != null && idleConnections > 0) {
        Connects shmConnects = idleConnections(shm);
        connectComparison(contenders, shmConnects);
      }
      if (shm != null && idleWait > 0) {
        idleMemory(shm);
      }
      return 0;
    } finally {
      for (Contender c : contenders) {
        c.channel().shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      for (AutoCloseable r : resources.reversed()) {
        r.close();
      }
    }
  }

  private Contender start(String transport, List<AutoCloseable> resources) throws Exception {
    switch (transport) {
      case "shm", "shm-b" -> {
        List<String> options = transport.equals("shm") ? List.of()
            : List.of(shmB.trim().split("\\s+"));
        ChildJvm server = ExitWithParent.startServer(transport + " server", EchoServer.class,
            options, "shm");
        resources.add(server);
        int port = server.awaitPort(Duration.ofSeconds(60));
        return new Contender(transport, ShmChannelBuilder.forAddress("localhost", port)
            .usePlaintext().transportMode(TransportMode.SHM_ONLY)
            .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build(), server);
      }
      case "tcp" -> {
        ChildJvm server = ExitWithParent.startServer("netty server", EchoServer.class, "netty");
        resources.add(server);
        int port = server.awaitPort(Duration.ofSeconds(60));
        return new Contender("tcp", NettyChannelBuilder.forAddress("localhost", port)
            .usePlaintext().maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build(), server);
      }
      case "uds" -> {
        Files.deleteIfExists(Path.of(EchoServer.udsPath(UDS_NUMBER)));
        ChildJvm server = ExitWithParent.startServer("netty uds server", EchoServer.class, "netty-uds",
            Integer.toString(UDS_NUMBER));
        resources.add(server);
        resources.add(() -> Files.deleteIfExists(Path.of(EchoServer.udsPath(UDS_NUMBER))));
        server.awaitPort(Duration.ofSeconds(60));
        io.netty.channel.epoll.EpollEventLoopGroup loop =
            new io.netty.channel.epoll.EpollEventLoopGroup(1);
        resources.add(() -> loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync());
        return new Contender("uds", NettyChannelBuilder
            .forAddress(new io.netty.channel.unix.DomainSocketAddress(
                EchoServer.udsPath(UDS_NUMBER)))
            .channelType(io.netty.channel.epoll.EpollDomainSocketChannel.class)
            .eventLoopGroup(loop).usePlaintext()
            .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build(), server);
      }
      case "inproc" -> {
        Server server = InProcessServerBuilder.forName(IN_PROCESS_NAME)
            .addService(EchoService.definition())
            .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build().start();
        resources.add(() -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
        return new Contender("inproc", InProcessChannelBuilder.forName(IN_PROCESS_NAME)
            .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build(), null);
      }
      default -> throw new CommandLine.ParameterException(spec.commandLine(),
          "unknown transport " + transport + " (shm, uds, tcp, inproc)");
    }
  }

  private static byte[] payload(int size) {
    byte[] b = new byte[size];
    new java.util.Random(size).nextBytes(b);
    return b;
  }

  /** {@code threads} blocking callers, each calling back to back for {@code seconds}. */
  private static void closedLoop(Contender c, byte[] request, int threads, int seconds, Cell cell)
      throws Exception {
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong calls = new AtomicLong();
    Latencies[] latencies = new Latencies[threads];
    List<Thread> callers = new ArrayList<>();
    CountDownLatch go = new CountDownLatch(1);
    java.util.concurrent.ConcurrentLinkedQueue<Throwable> errors =
        new java.util.concurrent.ConcurrentLinkedQueue<>();
    for (int i = 0; i < threads; i++) {
      Latencies mine = latencies[i] = new Latencies();
      callers.add(Thread.ofPlatform().name("caller-" + i).start(() -> {
        try {
          go.await();
          // Past the round's end (a fixed 30 s failed rounds longer than that).
          CallOptions options =
              CallOptions.DEFAULT.withDeadlineAfter(seconds + 30L, TimeUnit.SECONDS);
          while (!stop.get()) {
            long t0 = System.nanoTime();
            byte[] response = ClientCalls.blockingUnaryCall(c.channel(), EchoService.ECHO,
                options, request);
            mine.record(System.nanoTime() - t0);
            if (response.length != request.length) {
              throw new IllegalStateException(c.label() + ": wrong echo");
            }
            calls.incrementAndGet();
          }
        } catch (Throwable t) {
          errors.add(t);
        }
      }));
    }
    long cpu0 = OS.getProcessCpuTime();
    long server0 = c.serverCpuNanos();
    long alloc0 = THREADS.getTotalThreadAllocatedBytes();
    Threads threads0 = c.threads();
    long t0 = System.nanoTime();
    go.countDown();
    Thread.sleep(seconds * 1000L);
    long calls1 = calls.get();
    long wall = System.nanoTime() - t0;
    long cpu1 = OS.getProcessCpuTime();
    long server1 = c.serverCpuNanos();
    long alloc1 = THREADS.getTotalThreadAllocatedBytes();
    // Before the callers may end: a thread that ended is not counted.
    cell.add(threads0.clientSince(), c.serverSince(threads0));
    stop.set(true);
    for (Thread t : callers) {
      t.join(30_000);
    }
    if (!errors.isEmpty()) {
      throw new IllegalStateException(c.label() + " failed", errors.peek());
    }
    cell.operations += calls1;
    cell.wallNanos += wall;
    cell.clientCpuNanos += cpu1 - cpu0;
    cell.serverCpuNanos += server1 - server0;
    cell.allocatedBytes += alloc1 - alloc0;
    for (Latencies l : latencies) {
      cell.latencies.add(l);
    }
  }

  /** One bidi stream: the client sends while the transport is ready; counts echoes. */
  private static void bidi(Contender c, byte[] message, int seconds, Cell cell) throws Exception {
    AtomicLong received = new AtomicLong();
    AtomicBoolean stop = new AtomicBoolean();
    CountDownLatch closed = new CountDownLatch(1);
    AtomicLong failed = new AtomicLong();
    ClientCall<byte[], byte[]> call = c.channel().newCall(EchoService.ECHO_STREAM,
        CallOptions.DEFAULT.withDeadlineAfter(seconds + 30L, TimeUnit.SECONDS));
    Object sendLock = new Object();
    Runnable pump = () -> {
      synchronized (sendLock) {
        while (!stop.get() && call.isReady()) {
          call.sendMessage(message);
        }
      }
    };
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onMessage(byte[] m) {
        received.incrementAndGet();
        call.request(1);
      }

      @Override
      public void onReady() {
        pump.run();
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        if (!status.isOk()) {
          failed.incrementAndGet();
        }
        closed.countDown();
      }
    }, new Metadata());
    call.request(1);
    long cpu0 = OS.getProcessCpuTime();
    long server0 = c.serverCpuNanos();
    long alloc0 = THREADS.getTotalThreadAllocatedBytes();
    Threads threads0 = c.threads();
    long received0 = received.get();
    long t0 = System.nanoTime();
    pump.run();
    Thread.sleep(seconds * 1000L);
    long n = received.get() - received0;
    long wall = System.nanoTime() - t0;
    long cpu1 = OS.getProcessCpuTime();
    long server1 = c.serverCpuNanos();
    long alloc1 = THREADS.getTotalThreadAllocatedBytes();
    cell.add(threads0.clientSince(), c.serverSince(threads0));
    stop.set(true);
    synchronized (sendLock) {
      call.halfClose();
    }
    if (!closed.await(30, TimeUnit.SECONDS) || failed.get() > 0) {
      throw new IllegalStateException(c.label() + ": bidi stream did not end cleanly");
    }
    cell.operations += n;
    cell.wallNanos += wall;
    cell.clientCpuNanos += cpu1 - cpu0;
    cell.serverCpuNanos += server1 - server0;
    cell.allocatedBytes += alloc1 - alloc0;
  }

  /**
   * A separate pass with JFR allocation sampling on (not during the timed runs, which it would
   * slow): bytes per call or message that each transport's own code allocates in this JVM.
   */
  private void transportAllocation(List<Contender> contenders, byte[] small, byte[] kib,
      boolean unary, boolean stream) throws Exception {
    System.out.println();
    System.out.println("Client-JVM allocation by the transport's own code (JFR allocation samples,"
        + " first non-JDK frame in the transport's packages; separate 2 s passes):");
    StringBuilder md = new StringBuilder("| B allocated by transport code | ");
    md.append(String.join(" | ", contenders.stream().map(Contender::label).toList()))
        .append(" |\n|---|").append("---|".repeat(contenders.size())).append('\n');
    String[] rows = {"100 B unary c=" + concurrency + " per call", "1 KiB bidi per message"};
    for (int r = 0; r < rows.length; r++) {
      if (r == 0 ? !unary : !stream) {
        continue;
      }
      md.append("| ").append(rows[r]).append(" |");
      for (Contender c : contenders) {
        Cell cell = new Cell();
        TransportAllocation jfr = TransportAllocation.start();
        if (r == 0) {
          closedLoop(c, small, concurrency, 2, cell);
        } else {
          bidi(c, kib, 2, cell);
        }
        long bytes = jfr.stop(TransportAllocation.packagesOf(c.label()));
        md.append(' ').append(fmt(bytes / (double) Math.max(1, cell.operations))).append(" |");
      }
      md.append('\n');
    }
    System.out.print(md);
  }

  private static void print(Map<String, Map<String, Cell>> table, String[] workloads,
      double handOffMicros, double handOffAfter) {
    List<String> labels = new ArrayList<>(table.get(workloads[0]).keySet());
    StringBuilder md = new StringBuilder();
    System.out.println();
    String header = String.format("%-34s", "workload") + labels.stream()
        .map(l -> String.format("%12s", l)).reduce("", String::concat)
        + String.format("%10s%12s", "shm/tcp", "shm/inproc");
    System.out.println(header);
    md.append("| workload | ").append(String.join(" | ", labels))
        .append(" | shm/tcp | shm/inproc |\n|---|")
        .append("---|".repeat(labels.size() + 2)).append('\n');
    for (int w = 0; w < workloads.length; w++) {
      Map<String, Cell> row = table.get(workloads[w]);
      boolean latency = workloads[w].equals("100 B unary c=1");
      boolean stream = workloads[w].contains("bidi");
      if (latency) {
        line(md, workloads[w] + " p50 (us)", labels, row, c -> c.latencies.p50() / 1e3, false);
        line(md, workloads[w] + " p99 (us)", labels, row, c -> c.latencies.p99() / 1e3, false);
        continue;
      }
      String unit = stream ? " msgs/s" : " calls/s";
      line(md, workloads[w] + unit, labels, row, Cell::perSecond, true);
      String per = stream ? "/msg" : "/call";
      line(md, "  client CPU us" + per, labels, row, Cell::clientCpuMicros, false);
      line(md, "  server CPU us" + per, labels, row, Cell::serverCpuMicros, false);
      line(md, "  client alloc B" + per, labels, row, Cell::allocatedPerOperation, false);
      if (!stream) {
        line(md, "  client ctx switches" + per, labels, row, Cell::clientSwitchesPer, false);
        line(md, "  server ctx switches" + per, labels, row, Cell::serverSwitchesPer, false);
      }
      // A share of a core beside each cell, not a cost of the transport: no ratios.
      line(md, "  JIT CPU meanwhile, % of a core", labels, row, Cell::jitPercent, false, false);
    }
    System.out.println();
    System.out.println("in-process: client and server share this JVM, so its client CPU is both"
        + " sides and its server CPU is 0; CPU is process CPU time over the measured interval.");
    System.out.printf("One thread hand-off (a parked thread unparked by another, then running)"
        + " costs %.1f us of CPU on this host before the servers started and %.1f us after the"
        + " rounds (%,d hand-offs between two threads, both threads' CPU). A blocking call pays"
        + " at least one in the client JVM, whatever the transport: its caller parks until a"
        + " transport thread hands it the response.%n", handOffMicros, handOffAfter, HAND_OFFS);
    System.out.println();
    System.out.println("Markdown:");
    System.out.print(md);
  }

  private static void line(StringBuilder md, String name, List<String> labels,
      Map<String, Cell> row, java.util.function.ToDoubleFunction<Cell> f, boolean higherBetter) {
    line(md, name, labels, row, f, higherBetter, true);
  }

  private static void line(StringBuilder md, String name, List<String> labels,
      Map<String, Cell> row, java.util.function.ToDoubleFunction<Cell> f, boolean higherBetter,
      boolean ratios) {
    StringBuilder out = new StringBuilder(String.format("%-34s", name));
    md.append("| ").append(name.trim()).append(" |");
    for (String l : labels) {
      double v = f.applyAsDouble(row.get(l));
      out.append(String.format("%12s", fmt(v)));
      md.append(' ').append(fmt(v)).append(" |");
    }
    String vsTcp = ratios ? ratio(row, "shm", "tcp", f, higherBetter) : "-";
    String vsInproc = ratios ? ratio(row, "shm", "inproc", f, higherBetter) : "-";
    out.append(String.format("%10s%12s", vsTcp, vsInproc));
    md.append(' ').append(vsTcp).append(" | ").append(vsInproc).append(" |\n");
    System.out.println(out);
  }

  /** shm relative to another: throughput as shm/other, costs as shm/other too (lower is better). */
  private static String ratio(Map<String, Cell> row, String a, String b,
      java.util.function.ToDoubleFunction<Cell> f, boolean higherBetter) {
    if (!row.containsKey(a) || !row.containsKey(b)) {
      return "-";
    }
    double y = f.applyAsDouble(row.get(b));
    return y == 0 ? "-" : String.format("%.2fx", f.applyAsDouble(row.get(a)) / y);
  }

  private static String fmt(double v) {
    return v >= 1000 ? String.format("%,.0f", v) : v >= 10 ? String.format("%.1f", v)
        : String.format("%.2f", v);
  }

  // ------------------------------------------------------------------------------------------
  // grpc-shm only: many idle connections, and an idle connection's memory

  /** Returns the connects' times (to READY) and cost. */
  private Connects idleConnections(Contender shm) throws Exception {
    int port = portOf(shm);
    long serverPid = shm.server().pid();
    Supplier<ManagedChannel> shmChannels = () -> ShmChannelBuilder.forAddress("localhost", port)
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    long[] warmup = warmUpConnects(shmChannels);
    // The warm-up's connections end on both sides, and the handshake workers they woke retire
    // (2 s idle), before the thread counts are taken.
    Thread.sleep(3000);
    int serverThreads0 = threads(serverPid);
    int clientThreads0 = threads(ProcessHandle.current().pid());
    List<ManagedChannel> channels = new ArrayList<>();
    try {
      Connects connects = connectEach(shmChannels, channels, shm, warmup);
      Thread.sleep(2000); // let the connections settle into idleness
      int serverThreads = threads(serverPid);
      int clientThreads = threads(ProcessHandle.current().pid());
      long cpu0 = OS.getProcessCpuTime();
      long server0 = shm.serverCpuNanos();
      var serverThreadsBefore = ThreadCpu.counters(serverPid);
      var clientThreadsBefore = ThreadCpu.counters(SELF);
      long t0 = System.nanoTime();
      Thread.sleep(10_000);
      double wall = System.nanoTime() - t0;
      long cpu1 = OS.getProcessCpuTime();
      long server1 = shm.serverCpuNanos();
      double clientCore = (cpu1 - cpu0) / wall * 100;
      double serverCore = (server1 - server0) / wall * 100;
      // A second window: in the first, each JVM still collects and compiles after the burst of
      // connects; the second is closer to what idle connections cost for good.
      long t1 = System.nanoTime();
      Thread.sleep(10_000);
      double wall2 = System.nanoTime() - t1;
      double clientCore2 = (OS.getProcessCpuTime() - cpu1) / wall2 * 100;
      double serverCore2 = (shm.serverCpuNanos() - server1) / wall2 * 100;
      System.out.printf("%n%d idle grpc-shm connections to one server:%n", idleConnections);
      System.out.printf("  threads added: server %d, client %d%n", serverThreads - serverThreads0,
          clientThreads - clientThreads0);
      System.out.printf("  CPU while idle, 2-12 s after the last connect: server %.2f%%, client"
          + " %.2f%% of one core; 12-22 s: server %.2f%%, client %.2f%%%n",
          serverCore, clientCore, serverCore2, clientCore2);
      System.out.printf("    busiest server threads: %s%n    busiest client threads: %s%n",
          ThreadCpu.busiestSince(serverPid, serverThreadsBefore, 5),
          ThreadCpu.busiestSince(SELF, clientThreadsBefore, 5));
      System.out.printf("  connect (to READY): p50 %.2f ms, p99 %.2f ms%n",
          connects.percentile(50) / 1e6, connects.percentile(99) / 1e6);
      return connects;
    } finally {
      closeAll(channels);
    }
  }

  /**
   * The same number of channels, one after another and kept open, over each other transport
   * that has a server here (TCP, in-process): what a connect costs without shared memory, and
   * grpc's own channel cost with no transport at all.
   */
  private void connectComparison(List<Contender> contenders, Connects shmConnects)
      throws Exception {
    Map<String, Connects> connects = new LinkedHashMap<>();
    connects.put("shm", shmConnects);
    for (Contender c : contenders) {
      Supplier<ManagedChannel> factory = switch (c.label()) {
        case "tcp" -> () -> NettyChannelBuilder.forAddress("localhost", portOf(c)).usePlaintext()
            .build();
        case "inproc" -> () -> InProcessChannelBuilder.forName(IN_PROCESS_NAME).build();
        default -> null; // uds: its channels share an event loop made for the contender
      };
      if (factory == null) {
        continue;
      }
      long[] warmup = warmUpConnects(factory);
      List<ManagedChannel> channels = new ArrayList<>();
      try {
        connects.put(c.label(), connectEach(factory, channels, c, warmup));
      } finally {
        closeAll(channels);
      }
    }
    System.out.printf("%nConnect to READY, %d channels one after another, each kept open while"
        + " the rest connect, after %d connects to warm up (ms; CPU: us per connect over the"
        + " kept-open connects, channel build included; in-process: both sides in the client):%n",
        idleConnections, connectWarmup);
    List<String> others = List.of("tcp", "inproc").stream().filter(connects::containsKey)
        .toList();
    StringBuilder head = new StringBuilder("| |");
    for (String t : connects.keySet()) {
      head.append(' ').append(t).append(" |");
    }
    for (String other : others) {
      head.append(" shm/").append(other).append(" |");
    }
    System.out.println(head);
    System.out.println("|" + "---|".repeat(1 + connects.size() + others.size()));
    connectRow(connects, others, "p50", n -> n.percentile(50) / 1e6, "%.2f");
    connectRow(connects, others, "p99", n -> n.percentile(99) / 1e6, "%.2f");
    connectRow(connects, others, "client CPU", Connects::clientCpuMicros, "%.0f");
    connectRow(connects, others, "server CPU", Connects::serverCpuMicros, "%.0f");
    connectRow(connects, others, "client page faults", Connects::clientFaults, "%.1f");
    connectRow(connects, others, "server page faults", Connects::serverFaults, "%.1f");
    connectRow(connects, others, "JIT CPU meanwhile (ms)", n -> n.jitMillis(), "%.0f");
    if (connectWarmup >= 2 * WARMUP_SAMPLE) {
      connectRow(connects, others, "warm-up, first " + WARMUP_SAMPLE + ", p50",
          n -> n.warmupP50(true) / 1e6, "%.2f");
      connectRow(connects, others, "warm-up, last " + WARMUP_SAMPLE + ", p50",
          n -> n.warmupP50(false) / 1e6, "%.2f");
    }
  }

  private static void connectRow(Map<String, Connects> connects, List<String> others,
      String name, java.util.function.ToDoubleFunction<Connects> value, String format) {
    StringBuilder row = new StringBuilder("| ").append(name).append(" |");
    for (Connects c : connects.values()) {
      row.append(' ').append(String.format(format, value.applyAsDouble(c))).append(" |");
    }
    double shm = value.applyAsDouble(connects.get("shm"));
    for (String other : others) {
      double o = value.applyAsDouble(connects.get(other));
      row.append(' ').append(o == 0 ? "-" : String.format("%.2fx", shm / o)).append(" |");
    }
    System.out.println(row);
  }

  /**
   * One transport's kept-open connects: their times to READY (sorted), the CPU both JVMs spent
   * per connect meanwhile (µs; the server's is 0 without a server JVM), the warm-up's times in
   * order, the CPU both JVMs' JIT compilers used meanwhile (ms: what is left of the warm-up),
   * and the minor page faults per connect in each process.
   */
  private record Connects(long[] nanos, double clientCpuMicros, double serverCpuMicros,
      long[] warmup, long jitMillis, double clientFaults, double serverFaults) {
    double percentile(int p) {
      return nanos[Math.min(nanos.length - 1, nanos.length * p / 100)];
    }

    /** p50 of the first (or last) {@link #WARMUP_SAMPLE} warm-up connects. */
    double warmupP50(boolean first) {
      long[] part = first ? Arrays.copyOf(warmup, WARMUP_SAMPLE)
          : Arrays.copyOfRange(warmup, warmup.length - WARMUP_SAMPLE, warmup.length);
      Arrays.sort(part);
      return part[part.length / 2];
    }
  }

  /**
   * Connects and closes channels first, as every workload is warmed before it is measured, and
   * returns their times to READY in order. The connect path runs once per connect, so the JIT
   * reaches it late: after 300 connects the JIT still compiled for ~0.9 ms per connect while
   * 1,000 more were timed, and after 3,000 its C2 compiler still took 0.3-0.6 s of CPU (a large
   * share of two cores) while 1,000 more ran: grpc's channel constructor and the handshakes
   * reach C2 only after 4,000-11,000 connects (BENCHMARKS.md), hence the default of 10,000. The
   * table prints the JIT's CPU during the timed connects, so a run still compiling shows.
   */
  private long[] warmUpConnects(Supplier<ManagedChannel> factory)
      throws InterruptedException {
    System.out.printf("warming up with %,d connects...%n", connectWarmup);
    long[] nanos = new long[connectWarmup];
    for (int i = 0; i < connectWarmup; i++) {
      ManagedChannel ch = factory.get();
      try {
        long t0 = System.nanoTime();
        awaitReady(ch);
        nanos[i] = System.nanoTime() - t0;
      } finally {
        ch.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      }
    }
    return nanos;
  }

  /**
   * {@code --idle-connections} channels from {@code factory}, one after another, each added to
   * {@code channels} (kept open) before it connects: their times to READY (sorted) and the CPU
   * of this JVM and of {@code contender}'s server per connect.
   */
  private Connects connectEach(Supplier<ManagedChannel> factory, List<ManagedChannel> channels,
      Contender contender, long[] warmup) throws InterruptedException {
    long[] nanos = new long[idleConnections];
    long serverPid = contender.server() == null ? -1 : contender.server().pid();
    long cpu0 = OS.getProcessCpuTime();
    long server0 = contender.serverCpuNanos();
    Threads threads0 = contender.threads();
    long clientFaults0 = ThreadCpu.minorFaults(SELF);
    long serverFaults0 = serverPid < 0 ? 0 : ThreadCpu.minorFaults(serverPid);
    System.out.printf("timing %,d connects over %s...%n", idleConnections, contender.label());
    for (int i = 0; i < idleConnections; i++) {
      ManagedChannel ch = factory.get();
      channels.add(ch);
      long t0 = System.nanoTime();
      awaitReady(ch);
      nanos[i] = System.nanoTime() - t0;
    }
    double clientCpu = (OS.getProcessCpuTime() - cpu0) / 1e3 / idleConnections;
    double serverCpu = (contender.serverCpuNanos() - server0) / 1e3 / idleConnections;
    long jitMillis = threads0.clientSince().compilerMillis()
        + contender.serverSince(threads0).compilerMillis();
    double clientFaults = (ThreadCpu.minorFaults(SELF) - clientFaults0) / (double) idleConnections;
    double serverFaults = serverPid < 0 ? 0
        : (ThreadCpu.minorFaults(serverPid) - serverFaults0) / (double) idleConnections;
    Arrays.sort(nanos);
    return new Connects(nanos, clientCpu, serverCpu, warmup, jitMillis, clientFaults,
        serverFaults);
  }

  private static void closeAll(List<ManagedChannel> channels) throws InterruptedException {
    for (ManagedChannel ch : channels) {
      ch.shutdownNow();
    }
    for (ManagedChannel ch : channels) {
      ch.awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  private static void awaitReady(ManagedChannel ch) throws InterruptedException {
    CountDownLatch ready = new CountDownLatch(1);
    Runnable[] watch = new Runnable[1];
    watch[0] = () -> {
      ConnectivityState s = ch.getState(false);
      if (s == ConnectivityState.READY) {
        ready.countDown();
      } else if (s == ConnectivityState.TRANSIENT_FAILURE) {
        throw new IllegalStateException("connection failed");
      } else {
        ch.notifyWhenStateChanged(s, watch[0]);
      }
    };
    ConnectivityState s = ch.getState(true);
    ch.notifyWhenStateChanged(s, watch[0]);
    if (!ready.await(30, TimeUnit.SECONDS)) {
      throw new IllegalStateException("connection not ready within 30 s: " + ch.getState(false));
    }
  }

  private void idleMemory(Contender shm) throws Exception {
    byte[] large = payload(64 << 20);
    byte[] ack = EchoService.ack(large);
    CallOptions options = CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS);
    long[] warmCalls = new long[5];
    // Each call's page faults (both processes) and this JVM's collections: a slow call shows
    // whether it touched fresh memory or waited for the collector.
    StringBuilder each = new StringBuilder();
    long self = ProcessHandle.current().pid();
    long server = shm.server().pid();
    for (int i = 0; i < warmCalls.length; i++) {
      long clientFaults0 = ThreadCpu.minorFaults(self);
      long serverFaults0 = ThreadCpu.minorFaults(server);
      long gc0 = ThreadCpu.gcEvents();
      long warm0 = System.nanoTime();
      byte[] got = ClientCalls.blockingUnaryCall(shm.channel(), EchoService.ACK, options, large);
      warmCalls[i] = System.nanoTime() - warm0;
      each.append(String.format("%s%.1f ms (%,d + %,d, %d)", i == 0 ? "" : ", ",
          warmCalls[i] / 1e6, ThreadCpu.minorFaults(self) - clientFaults0,
          ThreadCpu.minorFaults(server) - serverFaults0, ThreadCpu.gcEvents() - gc0));
      if (!Arrays.equals(ack, got)) {
        throw new IllegalStateException("wrong ack");
      }
    }
    long[] sorted = warmCalls.clone();
    Arrays.sort(sorted);
    long warm = sorted[sorted.length / 2];
    long serverBefore = shmemKib(shm.server().pid());
    long clientBefore = shmemKib(ProcessHandle.current().pid());
    Thread.sleep(idleWait * 1000L);
    long serverAfter = shmemKib(shm.server().pid());
    long clientAfter = shmemKib(ProcessHandle.current().pid());
    long cold0 = System.nanoTime();
    ClientCalls.blockingUnaryCall(shm.channel(), EchoService.ACK, options, large);
    long cold = System.nanoTime() - cold0;
    System.out.printf("%nIdle grpc-shm connection after 64 MiB calls (shared memory resident,"
        + " RssShmem):%n");
    System.out.printf("  right after: server %d MiB, client %d MiB; after %d s idle: server %d"
        + " MiB, client %d MiB%n", serverBefore >> 10, clientBefore >> 10, idleWait,
        serverAfter >> 10, clientAfter >> 10);
    System.out.printf("  64 MiB call: warm (median of 5) %.2f ms, first after the idle period"
        + " %.2f ms%n",
        warm / 1e6, cold / 1e6);
    System.out.printf("  the five calls in order (page faults client + server; collections in"
        + " the client): %s%n", each);
  }

  private static int portOf(Contender shm) {
    String authority = shm.channel().authority();
    return Integer.parseInt(authority.substring(authority.lastIndexOf(':') + 1));
  }

  private static int threads(long pid) throws Exception {
    try (var s = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      return (int) s.count();
    }
  }

  private static long shmemKib(long pid) throws Exception {
    for (String l : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
      if (l.startsWith("RssShmem:")) {
        return Long.parseLong(l.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }
}
