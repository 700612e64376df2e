package io.grpcshm.examples;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.grpcshm.DataMovement;
import io.grpcshm.MoveEvent;
import io.grpcshm.ProtobufParsing;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.codec.ZeroCopyServices;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.examples.blob.Ack;
import io.grpcshm.examples.blob.AllocatedReply;
import io.grpcshm.examples.blob.AllocatedRequest;
import io.grpcshm.examples.blob.Blob;
import io.grpcshm.examples.blob.BlobServiceGrpc;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.Signals;
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
 * Protobuf uploads (one large {@code bytes} field of 1, 16 and 64 MiB, and a message of many
 * small fields), answered by a small ack, over three stacks in one run:
 *
 * <ul>
 *   <li><b>shm zero-copy</b>: grpc-shm, the server's marshallers swapped for codec-zerocopy, so
 *       the payload is parsed in place (aliases shared memory);
 *   <li><b>shm stock</b>: grpc-shm with unchanged generated stubs on both ends: what a service
 *       gets from the builder swap alone (grpc-shm parses a large message straight from shared
 *       memory into it, {@link ProtobufParsing#COPY_ONCE});
 *   <li><b>shm grpc-parse</b>: the same with {@link ProtobufParsing#STOCK} on both ends: grpc's
 *       protobuf marshaller exactly (copies the payload out of shared memory twice);
 *   <li><b>Netty TCP</b>: stock grpc on both ends.
 * </ul>
 *
 * Each server runs in its own child JVM; transports take turns in rounds. Besides latency it
 * reports the heap the server JVM allocated per call (all threads): what a receiver pays for
 * each message besides time. Options: {@code --help}.
 */
@Command(name = "ProtoBenchmark", mixinStandardHelpOptions = true,
    description = "Protobuf uploads over shm (zero-copy, stock, grpc parsing) and Netty TCP.")
public final class ProtoBenchmark implements Callable<Integer> {
  @Option(names = "--rounds", description = "measured rounds (${DEFAULT-VALUE})")
  int rounds = 12;

  @Option(names = "--warmup-rounds", description = "rounds before measuring (${DEFAULT-VALUE})")
  int warmupRounds = 4;

  @Option(names = "--calls", description = "calls per workload per round (${DEFAULT-VALUE})")
  int calls = 4;

  @Option(names = "--mover-sweep", paramLabel = "0|1",
      description = "1 runs the off-heap sweep over the data movers (${DEFAULT-VALUE})")
  int moverSweep = 1;

  @Option(names = "--heap-copy-stack", paramLabel = "0|1",
      description = "1 adds a fifth stack, shm stock with the off-heap receive pool off"
          + " (every large message copied into a new heap array) (${DEFAULT-VALUE})")
  int heapCopyStack = 0;

  @Option(names = "--jit-warmup-calls", paramLabel = "N",
      description = "before the rounds, N uploads of 1 KiB and N/10 of 1 MiB on every stack, so"
          + " the rounds measure compiled code on both transports, not the interpreter"
          + " (${DEFAULT-VALUE})")
  int jitWarmupCalls = 3000;

  @Spec CommandSpec spec;

  ProtoBenchmark() {}

  private record Workload(String label, Blob request, Ack expected) {}

  private record Stack(String label, ChildJvm server, ManagedChannel channel,
      BlobServiceGrpc.BlobServiceBlockingStub stub) {}

  private static final class Cell {
    final Latencies latencies = new Latencies();
    long serverAllocated;
    long calls;
  }

  public static void main(String[] args) {
    Mains.runBounded(new ProtoBenchmark(), Duration.ofMinutes(10), args);
  }


  @Override
  public String toString() {
    return "--rounds " + rounds + " --warmup-rounds " + warmupRounds + " --calls " + calls
        + " --mover-sweep " + moverSweep + " --heap-copy-stack " + heapCopyStack
        + " --jit-warmup-calls " + jitWarmupCalls;
  }

  @Override
  public Integer call() throws Exception {
    if (rounds < 1 || warmupRounds < 0 || calls < 1 || jitWarmupCalls < 0
        || (moverSweep != 0 && moverSweep != 1)
        || (heapCopyStack != 0 && heapCopyStack != 1)) {
      throw new ParameterException(spec.commandLine(), "need --rounds >= 1, --warmup-rounds >= 0,"
          + " --calls >= 1, --jit-warmup-calls >= 0, --mover-sweep 0 or 1, --heap-copy-stack 0"
          + " or 1");
    }
    run(this);
    return 0;
  }

  private static void run(ProtoBenchmark opts) throws Exception {
    List<Workload> workloads = workloads();
    System.out.println("ProtoBenchmark " + Instant.now() + ", " + Runtime.getRuntime()
        .availableProcessors() + " CPUs, Java " + Runtime.version() + "; " + opts);
    Map<String, Cell> cells = new LinkedHashMap<>();
    List<String> labels = new ArrayList<>(List.of("shm zero-copy", "shm stock",
        "shm grpc-parse", "tcp stock", "in-process"));
    // grpc's in-process transport in this JVM: gRPC's own cost with no transport, the floor.
    String inProcessName = "proto-benchmark-" + ProcessHandle.current().pid();
    io.grpc.Server inProcess = io.grpc.inprocess.InProcessServerBuilder.forName(inProcessName)
        .addService(new BlobServiceImpl())
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build().start();
    try (AutoCloseable stopInProcess = inProcess::shutdownNow;
         ChildJvm zc = ExitWithParent.startServer("shm-zc-server", EchoServer.class, "shm-zerocopy");
         ChildJvm shm = ExitWithParent.startServer("shm-server", EchoServer.class, "shm");
         ChildJvm grpcParse = ExitWithParent.startServer("shm-grpc-parsing-server", EchoServer.class,
             "shm-grpc-parsing");
         ChildJvm netty = ExitWithParent.startServer("netty-server", EchoServer.class, "netty");
         ChildJvm heapCopy = opts.heapCopyStack == 0 ? null : ExitWithParent.startServer(
             "shm-heap-copy-server", EchoServer.class,
             List.of("-Dio.grpcshm.protobufReceivePoolBytes=0"), "shm")) {
      List<Stack> stacks = new ArrayList<>(List.of(
          stack(labels.get(0), zc, shmChannel(zc.awaitPort(Duration.ofSeconds(60)),
              ProtobufParsing.COPY_ONCE), true),
          stack(labels.get(1), shm, shmChannel(shm.awaitPort(Duration.ofSeconds(60)),
              ProtobufParsing.COPY_ONCE), false),
          stack(labels.get(2), grpcParse, shmChannel(
              grpcParse.awaitPort(Duration.ofSeconds(60)), ProtobufParsing.STOCK), false),
          stack(labels.get(3), netty, NettyChannelBuilder.forAddress("localhost",
              netty.awaitPort(Duration.ofSeconds(60))).usePlaintext()
              .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build(), false),
          stack(labels.get(4), null, io.grpc.inprocess.InProcessChannelBuilder
              .forName(inProcessName).maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
              .build(), false)));
      if (heapCopy != null) {
        labels.add("shm heap copy");
        stacks.add(stack(labels.get(5), heapCopy, shmChannel(
            heapCopy.awaitPort(Duration.ofSeconds(60)), ProtobufParsing.COPY_ONCE), false));
      }
      try {
        jitWarmUp(stacks, opts.jitWarmupCalls);
        int rounds = opts.rounds + opts.warmupRounds;
        for (int round = 0; round < rounds; round++) {
          boolean measured = round >= opts.warmupRounds;
          StringBuilder progress = new StringBuilder();
          for (Workload w : workloads) {
            List<Stack> order = new ArrayList<>(stacks);
            java.util.Collections.rotate(order, -(round % order.size()));
            progress.append("; ").append(w.label());
            for (Stack s : order) {
              Cell cell = measured
                  ? cells.computeIfAbsent(s.label() + "/" + w.label(), k -> new Cell())
                  : new Cell();
              long before = allocated(s);
              for (int i = 0; i < opts.calls; i++) {
                long t0 = System.nanoTime();
                Ack ack = s.stub().withDeadlineAfter(60, TimeUnit.SECONDS).upload(w.request());
                long t = System.nanoTime() - t0;
                if (!ack.equals(w.expected())) {
                  throw new AssertionError(s.label() + " answered " + ack + " for " + w.label());
                }
                cell.latencies.record(t);
                cell.calls++;
              }
              cell.serverAllocated += allocated(s) - before;
              progress.append(' ').append(s.label().replace(' ', '-')).append(' ')
                  .append(Latencies.format(cell.latencies.p50()));
            }
          }
          System.out.printf("  round %2d/%d%s%s%n", round + 1, rounds,
              measured ? "" : " (warm-up)", progress);
        }
        if (opts.moverSweep != 0) {
          moverSweep(zc.awaitPort(Duration.ofSeconds(1)), opts);
        }
        for (Stack s : stacks) {
          AllocatedReply r = s.stub().allocated(AllocatedRequest.getDefaultInstance());
          poolTable.append(String.format("%-14s server off-heap receive pool: %s resident, %d"
              + " blocks lent, %d messages left to the heap, %d free blocks freed for another"
              + " size%n", s.label(), bytes(r.getReceivePoolResidentBytes()),
              r.getReceivePoolLent(), r.getReceivePoolRefused(), r.getReceivePoolReleased()));
        }
      } finally {
        for (Stack s : stacks) {
          s.channel().shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
      }
    }
    print(workloads, labels, cells);
    System.out.println();
    System.out.print(poolTable);
    System.out.print(moverTable);
  }

  /**
   * {@code calls} uploads of 1 KiB and {@code calls / 10} of 1 MiB on each stack, taking turns:
   * a few dozen calls per stack leave both transports' per-call code to the interpreter, whose
   * cost (about 1 ms per call here) would then dominate every size below 16 MiB.
   */
  private static void jitWarmUp(List<Stack> stacks, int calls) {
    if (calls == 0) {
      return;
    }
    long t0 = System.nanoTime();
    Blob small = Blob.newBuilder().setPayload(ByteString.copyFrom(new byte[1024])).build();
    Blob large = Blob.newBuilder().setPayload(ByteString.copyFrom(new byte[1 << 20])).build();
    for (int i = 0; i < calls; i += 100) {
      for (Stack s : stacks) {
        for (int k = 0; k < Math.min(100, calls - i); k++) {
          Blob b = k % 10 == 9 ? large : small;
          if (s.stub().withDeadlineAfter(60, TimeUnit.SECONDS).upload(b).getPayloadLength()
              != b.getPayload().size()) {
            throw new AssertionError(s.label() + " miscounted a warm-up upload");
          }
        }
      }
    }
    System.out.printf("  JIT warm-up: %d uploads per stack (1 KiB, every tenth 1 MiB) in %.1f s%n",
        calls, (System.nanoTime() - t0) / 1e9);
  }

  private static final StringBuilder moverTable = new StringBuilder();
  private static final StringBuilder poolTable = new StringBuilder();

  /**
   * Off-heap payloads (direct buffers, as tensors from native code or a mapped file) over the
   * zero-copy stack, moved into shared memory by: the policy's choice (shipped model, this
   * host's movers), always the CPU, always the software copy engine. Same server, interleaved.
   */
  private static void moverSweep(int port, ProtoBenchmark opts) throws Exception {
    MoverRegistry movers = MoverRegistry.open();
    Map<String, List<MoveEvent>> events = new LinkedHashMap<>();
    Map<String, DataMovement> configs = new LinkedHashMap<>();
    configs.put("policy", DataMovement.of(PolicyEngine.builder().hostMovers(movers)
        .signals(Signals.start(() -> 1)).build(), movers));
    configs.put("cpu", DataMovement.cpuOnly().withFixedMover(MoverKind.CPU, movers));
    configs.put("software", DataMovement.cpuOnly().withFixedMover(MoverKind.SOFTWARE, movers));
    Map<String, ManagedChannel> channels = new LinkedHashMap<>();
    Map<String, BlobServiceGrpc.BlobServiceBlockingStub> stubs = new LinkedHashMap<>();
    for (var e : configs.entrySet()) {
      List<MoveEvent> list = new java.util.concurrent.CopyOnWriteArrayList<>();
      events.put(e.getKey(), list);
      ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
          .transportMode(TransportMode.SHM_ONLY).maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
          .dataMovement(e.getValue().withTracer(list::add)).build();
      channels.put(e.getKey(), ch);
      stubs.put(e.getKey(), stack(e.getKey(), null, ch, true).stub());
    }
    Map<String, Cell> cells = new LinkedHashMap<>();
    int[] sizes = {1, 16, 64};
    String report;
    try {
      int rounds = opts.rounds + opts.warmupRounds;
      for (int round = 0; round < rounds; round++) {
        boolean measured = round >= opts.warmupRounds;
        for (int mib : sizes) {
          java.nio.ByteBuffer direct = java.nio.ByteBuffer.allocateDirect(mib << 20);
          byte[] chunk = new byte[1 << 20];
          new Random(mib).nextBytes(chunk);
          while (direct.hasRemaining()) {
            direct.put(chunk);
          }
          Blob blob = Blob.newBuilder().setPayload(
              com.google.protobuf.UnsafeByteOperations.unsafeWrap(direct.flip())).build();
          Ack expected = BlobServiceImpl.ack(blob);
          List<String> order = new ArrayList<>(stubs.keySet());
          java.util.Collections.rotate(order, -(round % order.size()));
          for (String key : order) {
            Cell cell = measured ? cells.computeIfAbsent(key + "/" + mib, k -> new Cell())
                : new Cell();
            for (int i = 0; i < opts.calls; i++) {
              long t0 = System.nanoTime();
              Ack ack = stubs.get(key).withDeadlineAfter(60, TimeUnit.SECONDS).upload(blob);
              cell.latencies.record(System.nanoTime() - t0);
              cell.calls++;
              if (!ack.equals(expected)) {
                throw new AssertionError(key + " answered " + ack + " for " + mib + " MiB");
              }
            }
          }
        }
        System.out.printf("  mover round %2d/%d%s%n", round + 1, rounds,
            measured ? "" : " (warm-up)");
      }
    } finally {
      for (ManagedChannel ch : channels.values()) {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      report = movers.report();
      movers.close();
    }
    moverTable.append("Off-heap payloads (direct buffer), shm zero-copy, by data mover:\n");
    moverTable.append("| request | policy p50 | policy's choices | cpu p50 | software p50 |"
        + " cpu / policy |\n|---|---|---|---|---|---|\n");
    for (int mib : sizes) {
      Cell pol = cells.get("policy/" + mib);
      Cell cpu = cells.get("cpu/" + mib);
      Cell sw = cells.get("software/" + mib);
      Map<String, Long> choices = new java.util.TreeMap<>();
      for (MoveEvent e : events.get("policy")) {
        if (e.bytes() == (long) mib << 20) {
          choices.merge(e.mover().name().toLowerCase() + (e.cacheInjection() ? "+inject" : "")
              + " " + e.mode().name().toLowerCase(), 1L, Long::sum);
        }
      }
      moverTable.append(String.format("| %d MiB | %s | %s | %s | %s | %.2fx |%n", mib,
          Latencies.format(pol.latencies.p50()), choices, Latencies.format(cpu.latencies.p50()),
          Latencies.format(sw.latencies.p50()),
          (double) cpu.latencies.p50() / pol.latencies.p50()));
    }
    moverTable.append("movers: ").append(report.strip().replace("\n", "; "))
        .append('\n');
  }

  private static List<Workload> workloads() {
    List<Workload> list = new ArrayList<>();
    for (int mib : new int[] {1, 16, 64}) {
      byte[] bytes = new byte[mib << 20];
      new Random(mib).nextBytes(bytes);
      Blob blob = Blob.newBuilder().setPayload(ByteString.copyFrom(bytes)).build();
      list.add(new Workload(mib + " MiB bytes", blob, BlobServiceImpl.ack(blob)));
    }
    Blob.Builder small = Blob.newBuilder();
    Random r = new Random(7);
    for (int i = 0; i < 20_000; i++) {
      small.addValues(r.nextLong());
    }
    for (int i = 0; i < 2_000; i++) {
      small.addTags("tag-" + r.nextInt(1_000_000));
    }
    Blob blob = small.build();
    list.add(new Workload("small fields (" + blob.getSerializedSize() / 1024 + " KiB)", blob,
        BlobServiceImpl.ack(blob)));
    return list;
  }

  private static ManagedChannel shmChannel(int port, ProtobufParsing parsing) {
    return ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).protobufParsing(parsing)
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES).build();
  }

  private static Stack stack(String label, ChildJvm server, ManagedChannel channel,
      boolean zeroCopyClient) {
    BlobServiceGrpc.BlobServiceBlockingStub stub = BlobServiceGrpc.newBlockingStub(channel)
        .withMaxOutboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
        .withMaxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES);
    if (zeroCopyClient) {
      // The sending side serialises straight into the transport's buffers.
      stub = stub.withInterceptors(ZeroCopyServices.clientInterceptor());
    }
    return new Stack(label, server, channel, stub);
  }

  private static long allocated(Stack s) {
    return s.stub().allocated(AllocatedRequest.getDefaultInstance()).getBytes();
  }

  private static void print(List<Workload> workloads, List<String> labels,
      Map<String, Cell> cells) {
    System.out.println();
    System.out.printf("%-24s %-14s %6s %10s %10s %9s %14s%n", "request", "stack", "calls", "p50",
        "p99", "MB/s", "server heap/call");
    for (Workload w : workloads) {
      for (String label : labels) {
        Cell c = cells.get(label + "/" + w.label());
        int size = w.request().getSerializedSize();
        System.out.printf("%-24s %-14s %6d %10s %10s %9.1f %14s%n", w.label(), label, c.calls,
            Latencies.format(c.latencies.p50()), Latencies.format(c.latencies.p99()),
            Latencies.megabytesPerSecond(size, c.latencies.p50()),
            bytes(c.serverAllocated / c.calls));
      }
    }
    System.out.println("server heap/call = bytes allocated by all threads of the server JVM per"
        + " call (includes grpc's own per-call objects and the ack); in-process: this JVM, the"
        + " client's allocations included.");
    System.out.println();
    System.out.println("| request | shm zero-copy p50 | shm stock p50 | shm grpc-parse p50 |"
        + " Netty TCP p50 | in-process p50 | TCP / zero-copy | TCP / stock | stock / in-process"
        + " | server heap/call zero-copy / stock / grpc-parse / TCP |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|");
    for (Workload w : workloads) {
      Cell zc = cells.get(labels.get(0) + "/" + w.label());
      Cell st = cells.get(labels.get(1) + "/" + w.label());
      Cell gp = cells.get(labels.get(2) + "/" + w.label());
      Cell tcp = cells.get(labels.get(3) + "/" + w.label());
      Cell inproc = cells.get(labels.get(4) + "/" + w.label());
      System.out.printf("| %s | %s | %s | %s | %s | %s | %.1fx | %.1fx | %.2fx | %s / %s / %s"
              + " / %s |%n",
          w.label(), Latencies.format(zc.latencies.p50()), Latencies.format(st.latencies.p50()),
          Latencies.format(gp.latencies.p50()), Latencies.format(tcp.latencies.p50()),
          Latencies.format(inproc.latencies.p50()),
          (double) tcp.latencies.p50() / zc.latencies.p50(),
          (double) tcp.latencies.p50() / st.latencies.p50(),
          (double) st.latencies.p50() / inproc.latencies.p50(),
          bytes(zc.serverAllocated / zc.calls), bytes(st.serverAllocated / st.calls),
          bytes(gp.serverAllocated / gp.calls), bytes(tcp.serverAllocated / tcp.calls));
    }
  }

  private static String bytes(long n) {
    return n >= 1 << 20 ? String.format("%.1f MiB", n / 1048576.0)
        : n >= 1024 ? String.format("%.1f KiB", n / 1024.0) : n + " B";
  }
}
