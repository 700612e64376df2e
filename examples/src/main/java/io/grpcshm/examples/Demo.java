package io.grpcshm.examples;

import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.childjvm.ChildJvm;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/**
 * The README demo: starts an echo server in a child JVM, calls it over shared memory and over
 * TCP loopback with growing payloads, checks every response and every call's path, and prints
 * the medians side by side. No arguments; about 30-45 s on a 2-core VM.
 */
@Command(name = "Demo", mixinStandardHelpOptions = true,
    description = "Unary echo to a server in another JVM, shared memory vs TCP loopback.")
public final class Demo implements Callable<Integer> {
  private record Payload(int bytes, int calls) {}

  private record Row(int bytes, long calls, long shmP50, long tcpP50) {}

  private static final List<Payload> PAYLOADS = List.of(
      new Payload(100, 1000), new Payload(64 << 10, 200),
      new Payload(1 << 20, 40), new Payload(16 << 20, 8));
  /** shm and TCP alternate in batches so a change in machine load hits both alike. */
  private static final int BATCHES = 4;
  private static final Duration WARM_UP = Duration.ofSeconds(20);
  private static final Duration TIME_LIMIT = Duration.ofMinutes(2);

  Demo() {}

  public static void main(String[] args) {
    Mains.runBounded(new Demo(), TIME_LIMIT, args);
  }


  @Override
  public Integer call() throws Exception {
    run();
    return 0;
  }


  private static void run() throws Exception {
    System.out.println("grpc-shm demo: unary echo to a server in another JVM,"
        + " shared memory vs TCP loopback");
    List<Row> rows = new ArrayList<>();
    try (ChildJvm server = ExitWithParent.startServer("server", EchoServer.class, "shm")) {
      int port = server.awaitPort(Duration.ofSeconds(60));
      System.out.println("client pid " + ProcessHandle.current().pid() + " -> server pid "
          + server.pid() + " on port " + port);
      try (Route shm = route(port, TransportMode.SHM_ONLY, TransportPath.SHARED_MEMORY);
           Route tcp = route(port, TransportMode.TCP_ONLY, TransportPath.TCP)) {
        warmUp(shm, tcp);
        for (Payload payload : PAYLOADS) {
          rows.add(measure(payload, shm, tcp));
        }
      }
    }
    printTable(rows);
  }

  private static Route route(int port, TransportMode mode, TransportPath expected) {
    TransportPathRecorder paths = new TransportPathRecorder();
    var channel = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(mode)
        .maxInboundMessageSize(EchoService.MAX_MESSAGE_BYTES)
        .intercept(paths)
        .build();
    return new Route(mode.name(), channel, paths, expected);
  }

  /**
   * Calls both paths with small payloads a few thousand times first: until the JIT has compiled
   * grpc's call path (~10 000 calls on a 2-core VM), a call costs close to a millisecond whatever
   * the transport, which would hide the difference. Bounded by {@link #WARM_UP}.
   */
  private static void warmUp(Route shm, Route tcp) {
    System.out.println("warming up both paths (JIT), up to " + WARM_UP.toSeconds() + " s...");
    long end = System.nanoTime() + WARM_UP.toNanos();
    byte[] small = new byte[100];
    byte[] medium = new byte[64 << 10];
    for (int batch = 0; batch < 60 && System.nanoTime() < end; batch++) {
      for (Route route : List.of(shm, tcp)) {
        for (int i = 0; i < 100; i++) {
          route.call(EchoService.ECHO, small, null);
        }
        for (int i = 0; i < 5; i++) {
          route.call(EchoService.ECHO, medium, null);
        }
      }
    }
  }

  private static Row measure(Payload payload, Route shm, Route tcp) {
    byte[] request = new byte[payload.bytes()];
    new Random(payload.bytes()).nextBytes(request);
    int perBatch = Math.max(1, payload.calls() / BATCHES);
    for (int i = 0; i < 2; i++) { // this size's buffers and segments
      shm.call(EchoService.ECHO, request, null);
      tcp.call(EchoService.ECHO, request, null);
    }
    Latencies shmTimes = new Latencies();
    Latencies tcpTimes = new Latencies();
    for (int batch = 0; batch < BATCHES; batch++) {
      for (int i = 0; i < perBatch; i++) {
        shmTimes.record(shm.call(EchoService.ECHO, request, null));
      }
      for (int i = 0; i < perBatch; i++) {
        tcpTimes.record(tcp.call(EchoService.ECHO, request, null));
      }
    }
    System.out.printf("  %-7s %4d calls per path, all responses and paths checked%n",
        Latencies.formatSize(payload.bytes()), shmTimes.count());
    return new Row(payload.bytes(), shmTimes.count(), shmTimes.p50(), tcpTimes.p50());
  }

  private static void printTable(List<Row> rows) {
    System.out.println();
    System.out.printf("%-8s %10s %10s %9s %10s %10s%n",
        "payload", "shm p50", "tcp p50", "speed-up", "shm MB/s", "tcp MB/s");
    for (Row r : rows) {
      System.out.printf("%-8s %10s %10s %8.1fx %10.1f %10.1f%n",
          Latencies.formatSize(r.bytes()), Latencies.format(r.shmP50()),
          Latencies.format(r.tcpP50()), (double) r.tcpP50() / r.shmP50(),
          Latencies.megabytesPerSecond(r.bytes(), r.shmP50()),
          Latencies.megabytesPerSecond(r.bytes(), r.tcpP50()));
    }
    System.out.println("p50 = median call latency; each call sends the payload and gets it back;"
        + " MB/s = payload / p50.");
  }
}
