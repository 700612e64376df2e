package io.grpcshm.examples;

import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import io.grpcshm.MoveEvent;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.codec.ZeroCopyServices;
import io.grpcshm.examples.pipeline.InferenceGrpc;
import io.grpcshm.examples.pipeline.InferenceResult;
import io.grpcshm.examples.pipeline.TensorBatch;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

/**
 * The multimodal pipeline example (and the README's demo): a pre-processing stage
 * ({@link Preprocessor}) sends batches of MobileNetV2-sized image tensors, 1 to 120 MB, to an
 * inference-like service ({@link InferenceService}, in a child JVM) over shared memory and over
 * TCP loopback. Every result is checked against the client's own run of the same model (scores
 * and CRC32C of the tensor bytes), every call's transport path is checked, and one line per call
 * shows the path, the data mover decision, client and server times and throughput; a summary
 * compares shared memory with TCP per size.
 *
 * <p>Usage: {@code Pipeline [--target host:port] [--sizes-mb 1,5,20,40,80,120] [--calls 5]
 * [--warmup-seconds 6] [--stream-batches 8]}. Without {@code --target} it starts
 * {@link PipelineServer} in a child JVM (killed when the pipeline ends, however it ends).
 */
@Command(name = "Pipeline", mixinStandardHelpOptions = true,
    description = "Image-tensor batches to an inference service over shared memory and TCP.")
public final class Pipeline implements Callable<Integer> {
  private static final Duration TIME_LIMIT = Duration.ofMinutes(3);
  private static final long CALL_DEADLINE_SECONDS = 60;
  /** Below the 256 MiB message limit of both ends, with room for the message's other fields. */
  static final int MAX_BATCH_MB = 250;

  @Option(names = "--target", paramLabel = "host:port",
      description = "a running PipelineServer (default: start one in a child JVM)")
  String target;

  @Option(names = "--sizes-mb", split = "\\s*,\\s*", paramLabel = "MB",
      description = "batch sizes in MB, comma-separated (default: 1,5,20,40,80,120)")
  List<Double> sizesMb = new ArrayList<>(Options.defaults().sizesMb());

  @Option(names = "--calls", description = "calls per size and path (${DEFAULT-VALUE})")
  int calls = Options.defaults().calls();

  @Option(names = "--warmup-seconds", description = "warm-up before measuring (${DEFAULT-VALUE})")
  int warmupSeconds = Options.defaults().warmupSeconds();

  @Option(names = "--stream-batches",
      description = "batches of the streaming comparison, 0 skips it (${DEFAULT-VALUE})")
  int streamBatches = Options.defaults().streamBatches();

  @Spec CommandSpec spec;

  Pipeline() {}

  /** Command-line options. */
  record Options(String target, List<Double> sizesMb, int calls, int warmupSeconds,
      int streamBatches) {
    static Options defaults() {
      return new Options(null, List.of(1.0, 5.0, 20.0, 40.0, 80.0, 120.0), 5, 6, 8);
    }
  }

  /** The options of a command line, checked. */
  static Options parse(String... args) {
    Pipeline command = new Pipeline();
    CommandLine cl = new CommandLine(command);
    cl.parseArgs(args);
    return command.options(cl);
  }

  private Options options(CommandLine cl) {
    Options o = new Options(target, List.copyOf(sizesMb), calls, warmupSeconds, streamBatches);
    if (o.calls < 1 || o.warmupSeconds < 0 || o.streamBatches < 0 || o.sizesMb.isEmpty()) {
      throw new ParameterException(cl, "need --calls >= 1, --warmup-seconds >= 0, "
          + "--stream-batches >= 0 and at least one size: " + o);
    }
    for (double mb : o.sizesMb) {
      if (!(mb > 0 && mb <= MAX_BATCH_MB)) {
        throw new ParameterException(cl, "--sizes-mb values must be in (0, " + MAX_BATCH_MB
            + "]: " + mb);
      }
    }
    return o;
  }

  /**
   * One checked call: which batch, over which path, how long; the mover column, the moves'
   * summed predicted copy µs (what the policy expected, before the copy), the policy's predicted µs of the
   * message (producing it + the copy) and the observed copy µs (NaN without a move).
   */
  record CallRecord(long batchId, int images, int bytes, String route, TransportPath path,
      String mover, double copyPredictedMicros, double messagePredictedMicros,
      double moveObservedMicros, long clientNanos, long serverNanos, boolean readInPlace,
      InferenceResult result) {
    double megabytesPerSecond() {
      return bytes * 1e3 / clientNanos;
    }
  }

  /** The result of a whole run. */
  record Report(List<CallRecord> calls, List<CallRecord> streamed, List<String> moverNotes) {}

  public static void main(String[] args) {
    Mains.runBounded(new Pipeline(), TIME_LIMIT, args);
  }


  @Override
  public Integer call() throws Exception {
    run(options(spec.commandLine()), System.out);
    return 0;
  }


  /** Runs the pipeline, printing to {@code out}; throws if any result or path is wrong. */
  static Report run(Options options, PrintStream out) throws Exception {
    out.printf(Locale.ROOT, "grpc-shm pipeline: pre-processing -> inference, MobileNetV2 input"
        + " (%dx%dx%d float32, %.2f MB per image), shared memory vs TCP loopback%n",
        Preprocessor.HEIGHT, Preprocessor.WIDTH, Preprocessor.CHANNELS,
        Preprocessor.IMAGE_BYTES / 1e6);
    if (options.target() != null) {
      return runAgainst(options.target(), options, out);
    }
    try (ChildJvm server = ExitWithParent.startServer("inference", PipelineServer.class, "0")) {
      int port = server.awaitPort(Duration.ofSeconds(60));
      out.println("client pid " + ProcessHandle.current().pid() + " -> inference server pid "
          + server.pid() + " on port " + port);
      return runAgainst("localhost:" + port, options, out);
    }
  }

  private static Report runAgainst(String target, Options options, PrintStream out)
      throws Exception {
    try (Link shm = Link.open("shm", target, TransportMode.SHM_ONLY, TransportPath.SHARED_MEMORY);
         Link tcp = Link.open("tcp", target, TransportMode.TCP_ONLY, TransportPath.TCP)) {
      warmUp(List.of(shm, tcp), options.warmupSeconds(), out);
      List<CallRecord> calls = sweep(options, shm, tcp, out);
      List<CallRecord> streamed = new ArrayList<>();
      if (options.streamBatches() > 0) {
        streamed.addAll(stream(options.streamBatches(), List.of(shm, tcp), out));
      }
      List<String> notes = shm.decisions.notes();
      printSummary(calls, notes, shm.decisions.lines(), out);
      return new Report(calls, streamed, notes);
    }
  }

  /**
   * Small batches on both paths first, so that the JIT has compiled grpc's call path, the model
   * and the pre-processing before anything is timed. Results are checked like any other.
   */
  private static void warmUp(List<Link> routes, int seconds, PrintStream out) {
    if (seconds == 0) {
      return;
    }
    out.println("warming up both paths with 1.2 MB batches (JIT), " + seconds + " s...");
    TensorBatch batch = Preprocessor.batch(0, 2);
    InferenceResult.Builder expected = SyntheticModel.run(batch);
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < end) {
      for (Link route : routes) {
        route.infer(batch, expected);
      }
    }
  }

  /** Each size: one batch, sent {@code calls} times over each path, alternating which goes first. */
  private static List<CallRecord> sweep(Options options, Link shm, Link tcp, PrintStream out) {
    out.println();
    out.printf("%5s %7s %7s  %-13s  %-30s %10s %10s %8s  %s%n", "batch", "images", "MB", "path",
        "mover (pred/obs)", "client", "server", "MB/s", "read in place");
    List<CallRecord> records = new ArrayList<>();
    long batchId = 0;
    for (double mb : options.sizesMb()) {
      batchId++;
      int images = Preprocessor.imagesFor(mb);
      TensorBatch batch = Preprocessor.batch(batchId, images);
      // The client runs the same model over its own bytes: the server's answer must match it.
      InferenceResult.Builder expected = SyntheticModel.run(batch);
      for (int call = 0; call < options.calls(); call++) {
        for (Link route : call % 2 == 0 ? List.of(shm, tcp) : List.of(tcp, shm)) {
          CallRecord r = route.infer(batch, expected);
          records.add(r);
          out.printf(Locale.ROOT, "%5d %7d %7.1f  %-13s  %-30s %10s %10s %8.1f  %s%n",
              r.batchId(), r.images(), r.bytes() / 1e6, r.path(), r.mover(),
              Latencies.format(r.clientNanos()), Latencies.format(r.serverNanos()),
              r.megabytesPerSecond(), r.readInPlace() ? "yes" : "no (copied)");
        }
      }
    }
    return records;
  }

  /**
   * The bidi variant: {@code batches} batches of 8 images (4.8 MB) on one InferStream call per
   * path, results checked in order.
   */
  private static List<CallRecord> stream(int batches, List<Link> routes, PrintStream out)
      throws Exception {
    List<TensorBatch> requests = new ArrayList<>();
    List<InferenceResult.Builder> expected = new ArrayList<>();
    for (int i = 0; i < batches; i++) {
      TensorBatch batch = Preprocessor.batch(1000 + i, 8);
      requests.add(batch);
      expected.add(SyntheticModel.run(batch));
    }
    out.println();
    List<CallRecord> all = new ArrayList<>();
    for (Link route : routes) {
      long start = System.nanoTime();
      List<CallRecord> records = route.inferStream(requests, expected);
      long nanos = System.nanoTime() - start;
      long bytes = requests.stream().mapToLong(b -> b.getData().size()).sum();
      out.printf(Locale.ROOT, "stream over %-13s %d batches of %.1f MB on one InferStream call:"
          + " %s, %.1f MB/s, all results checked%n", records.getFirst().path(), batches,
          requests.getFirst().getData().size() / 1e6, Latencies.format(nanos),
          bytes * 1e3 / nanos);
      all.addAll(records);
    }
    return all;
  }

  private static void printSummary(List<CallRecord> calls, List<String> moverNotes,
      List<String> copyLines, PrintStream out) {
    out.println();
    out.printf("%7s %7s %11s %11s %8s %9s %9s %11s %11s%n", "MB", "images", "shm client",
        "tcp client", "tcp/shm", "shm MB/s", "tcp MB/s", "shm server", "tcp server");
    List<Long> ids = calls.stream().map(CallRecord::batchId).distinct().toList();
    for (long id : ids) {
      List<CallRecord> shm = calls.stream()
          .filter(c -> c.batchId() == id && c.path() == TransportPath.SHARED_MEMORY).toList();
      List<CallRecord> tcp = calls.stream()
          .filter(c -> c.batchId() == id && c.path() == TransportPath.TCP).toList();
      long shmClient = median(shm.stream().mapToLong(CallRecord::clientNanos).toArray());
      long tcpClient = median(tcp.stream().mapToLong(CallRecord::clientNanos).toArray());
      int bytes = shm.getFirst().bytes();
      out.printf(Locale.ROOT, "%7.1f %7d %11s %11s %7.2fx %9.1f %9.1f %11s %11s%n", bytes / 1e6,
          shm.getFirst().images(), Latencies.format(shmClient), Latencies.format(tcpClient),
          (double) tcpClient / shmClient, bytes * 1e3 / shmClient, bytes * 1e3 / tcpClient,
          Latencies.format(median(shm.stream().mapToLong(CallRecord::serverNanos).toArray())),
          Latencies.format(median(tcp.stream().mapToLong(CallRecord::serverNanos).toArray())));
    }
    out.println("medians per size. client = call time seen by the pre-processing side (send the"
        + " batch, get the top-5 back);");
    out.println("server = CRC32C + model on the inference side; MB/s = batch MB / client time.");
    out.println("mover = the data mover the transport's policy chose to copy the tensor into shared"
        + " memory, its mode");
    out.println("(+ci: cache injection) and the copy's predicted/observed microseconds; - = no mover"
        + " (TCP), or no line yet (the");
    out.println("movers were still being opened and the CPU copied: warm-up).");
    out.println("copy predicted = what the policy expected the copy to cost, asked before it: the"
        + " mover's line on this host");
    out.println("(L_fixed + alpha*size, measured idle at 8-32 MiB on reused buffers) times the"
        + " median observed/line of its");
    out.println("last 5 copies of >= 1 MiB; observed = the copy as the sender saw it. The policy's"
        + " own prediction is of a");
    out.println("whole message as profiled (producing it, then the copy), shown apart. The first"
        + " call of a size also faults");
    out.println("the fresh shared-memory segment in, so it is shown apart. Lines: "
        + String.join(", ", copyLines));
    for (long id : ids) {
      List<CallRecord> moved = calls.stream().filter(c -> c.batchId() == id
          && c.path() == TransportPath.SHARED_MEMORY && !Double.isNaN(c.moveObservedMicros()))
          .toList();
      if (!moved.isEmpty()) {
        out.println("  " + moverSummary(moved));
      }
    }
    out.println("All " + calls.size() + " results matched the client's own run of the model"
        + " (top-5 scores bit for bit, CRC32C of the");
    out.println("tensor bytes) and every call took the expected path.");
    for (String note : moverNotes) {
      out.println("  mover note: " + note);
    }
  }

  /**
   * "119.8 MB PARALLEL sync: copy predicted 9120 us, observed 83772 us on the first call, 7765 us
   * median of the 4 later (4585-10827): predicted/observed 1.05x median (0.84-1.71); the policy's
   * cost of the message (producing it + the copy) 24598 us". The choice and the predicted copy
   * are the last call's (the first call of a run may still be a warm-up copy on the CPU); the
   * ratio is each later call's own prediction over its own copy.
   */
  static String moverSummary(List<CallRecord> moved) {
    CallRecord first = moved.getFirst();
    CallRecord last = moved.getLast();
    String choice = last.mover().replaceFirst(" [^ ]+ us.*$", "");
    StringBuilder b = new StringBuilder(String.format(Locale.ROOT, "%.1f MB %s: copy predicted %s"
        + " us, observed %s us on the first call", first.bytes() / 1e6, choice,
        micros(last.copyPredictedMicros()), micros(first.moveObservedMicros())));
    if (moved.size() > 1) {
      List<CallRecord> later = moved.subList(1, moved.size());
      long[] warm = later.stream().mapToLong(c -> Math.round(c.moveObservedMicros())).sorted()
          .toArray();
      long med = median(warm);
      b.append(String.format(Locale.ROOT, ", %d us median of the %d later (%d-%d)", med,
          warm.length, warm[0], warm[warm.length - 1]));
      double[] ratios = later.stream().filter(c -> Double.isFinite(c.copyPredictedMicros())
              && c.moveObservedMicros() > 0)
          .mapToDouble(c -> c.copyPredictedMicros() / c.moveObservedMicros()).sorted().toArray();
      if (ratios.length > 0) {
        int n = ratios.length;
        double medRatio = n % 2 == 1 ? ratios[n / 2] : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
        b.append(String.format(Locale.ROOT, ": predicted/observed %.2fx median (%.2f-%.2f)",
            medRatio, ratios[0], ratios[n - 1]));
      }
    }
    if (Double.isFinite(last.messagePredictedMicros())) {
      b.append(String.format(Locale.ROOT, "; the policy's cost of the message (producing it +"
          + " the copy) %d us", Math.round(last.messagePredictedMicros())));
    }
    return b.toString();
  }

  private static String micros(double us) {
    return Double.isFinite(us) ? String.valueOf(Math.round(us)) : "-";
  }

  private static long median(long[] values) {
    long[] sorted = values.clone();
    Arrays.sort(sorted);
    return sorted[sorted.length / 2];
  }

  /** A channel on one transport mode, with what is needed to check and describe its calls. */
  static final class Link implements AutoCloseable {
    final String name;
    final TransportPath expectedPath;
    final ManagedChannel channel;
    final TransportPathRecorder paths;
    final MoverDecisions decisions;
    private final InferenceGrpc.InferenceBlockingStub blocking;
    private final InferenceGrpc.InferenceStub async;

    private Link(String name, TransportPath expectedPath, ManagedChannel channel,
        TransportPathRecorder paths, MoverDecisions decisions) {
      this.name = name;
      this.expectedPath = expectedPath;
      this.channel = channel;
      this.paths = paths;
      this.decisions = decisions;
      // The sending side serialises straight into the transport's buffers (zero-copy codec).
      this.blocking = InferenceGrpc.newBlockingStub(channel)
          .withInterceptors(ZeroCopyServices.clientInterceptor())
          .withMaxOutboundMessageSize(InferenceService.MAX_MESSAGE_BYTES);
      this.async = InferenceGrpc.newStub(channel)
          .withInterceptors(ZeroCopyServices.clientInterceptor())
          .withMaxOutboundMessageSize(InferenceService.MAX_MESSAGE_BYTES);
    }

    static Link open(String name, String target, TransportMode mode, TransportPath expected) {
      TransportPathRecorder paths = new TransportPathRecorder();
      MoverDecisions decisions = new MoverDecisions();
      ShmChannelBuilder builder = ShmChannelBuilder.forTarget(target).usePlaintext()
          .transportMode(mode)
          .maxInboundMessageSize(InferenceService.MAX_MESSAGE_BYTES)
          .intercept(paths);
      ManagedChannel channel = decisions.install(builder).build();
      return new Link(name, expected, channel, paths, decisions);
    }

    /** One unary call, checked against {@code expected} (the client's own run of the model). */
    CallRecord infer(TensorBatch batch, InferenceResult.Builder expected) {
      decisions.startCall();
      long start = System.nanoTime();
      InferenceResult result = blocking.withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
          .infer(batch);
      long nanos = System.nanoTime() - start;
      List<MoveEvent> moves = decisions.callEvents();
      return check(batch, expected, result, paths.takeLast(), moves, nanos);
    }

    /** All {@code batches} on one bidi call; results checked in order. */
    List<CallRecord> inferStream(List<TensorBatch> batches,
        List<InferenceResult.Builder> expected) throws Exception {
      List<InferenceResult> results = new ArrayList<>();
      List<Long> arrivals = new ArrayList<>();
      CompletableFuture<Void> done = new CompletableFuture<>();
      decisions.startCall();
      long start = System.nanoTime();
      StreamObserver<TensorBatch> requests = async
          .withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS)
          .inferStream(new StreamObserver<>() {
            @Override
            public void onNext(InferenceResult result) {
              synchronized (results) {
                results.add(result);
                arrivals.add(System.nanoTime());
              }
            }

            @Override
            public void onError(Throwable t) {
              done.completeExceptionally(t);
            }

            @Override
            public void onCompleted() {
              done.complete(null);
            }
          });
      for (TensorBatch batch : batches) {
        requests.onNext(batch);
      }
      requests.onCompleted();
      done.get(CALL_DEADLINE_SECONDS + 5, TimeUnit.SECONDS);
      List<MoveEvent> moves = decisions.callEvents();
      TransportPath path = paths.takeLast();
      List<CallRecord> records = new ArrayList<>();
      synchronized (results) {
        if (results.size() != batches.size()) {
          throw new IllegalStateException(name + ": " + results.size() + " results for "
              + batches.size() + " streamed batches");
        }
        long previous = start;
        for (int i = 0; i < batches.size(); i++) {
          records.add(check(batches.get(i), expected.get(i), results.get(i), path, moves,
              arrivals.get(i) - previous));
          previous = arrivals.get(i);
        }
      }
      return records;
    }

    private CallRecord check(TensorBatch batch, InferenceResult.Builder expected,
        InferenceResult result, TransportPath path, List<MoveEvent> moves, long nanos) {
      if (path != expectedPath) {
        throw new IllegalStateException(name + ": batch " + batch.getBatchId() + " took path "
            + path + ", expected " + expectedPath);
      }
      if (result.getBatchId() != batch.getBatchId()
          || result.getDataCrc32C() != expected.getDataCrc32C()
          || !result.getImagesList().equals(expected.getImagesList())) {
        throw new IllegalStateException(String.format(Locale.ROOT,
            "%s: wrong result for batch %d: batch id %d, crc32c %08x (expected %08x), top-5 %s",
            name, batch.getBatchId(), result.getBatchId(), result.getDataCrc32C(),
            expected.getDataCrc32C(),
            result.getImagesList().equals(expected.getImagesList()) ? "equal" : "different"));
      }
      return new CallRecord(batch.getBatchId(), (int) batch.getShape(0), batch.getData().size(),
          name, path, decisions.describe(moves), decisions.copyPredictedMicros(moves),
          MoverDecisions.messagePredictedMicros(moves), MoverDecisions.observedMicros(moves),
          nanos, result.getComputeNanos(), result.getReadInPlace(), result);
    }

    @Override
    public void close() {
      channel.shutdownNow();
      try {
        if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
          throw new IllegalStateException(name + ": channel did not terminate within 5 s");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
