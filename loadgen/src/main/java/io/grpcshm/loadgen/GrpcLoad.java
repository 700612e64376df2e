package io.grpcshm.loadgen;

import io.grpc.ManagedChannel;
import io.grpcshm.TransportMode;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** grpc-load: a ghz-style load tool for gRPC calls, over grpc-shm's shared memory or TCP. */
@Command(name = "grpc-load", mixinStandardHelpOptions = true, version = "grpc-load 0.2.0",
    sortOptions = false, usageHelpWidth = 100,
    description = "Load-tests a gRPC method, unary or streaming (ghz-style). Descriptors come "
        + "from --protoset, --proto (needs protoc) or, by default, server reflection.",
    subcommands = {CompareCommand.class, EchoServerCommand.class})
public final class GrpcLoad implements Callable<Integer> {
  static final int DEFAULT_TOTAL = 200;
  static final int DEFAULT_CONCURRENCY = 50;

  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "HOST:PORT", description = "Target.")
  String target;

  @Option(names = "--call", paramLabel = "pkg.Service/Method",
      description = "Fully-qualified method to call.")
  String call;

  @Option(names = "--proto", paramLabel = "FILE",
      description = ".proto file (compiled with protoc at start-up: protoc must be on the PATH "
          + "or given with --protoc).")
  Path proto;

  @Option(names = {"-i", "--import-paths"}, split = ",", paramLabel = "DIR",
      description = "Import paths for --proto (comma separated or repeated).")
  List<Path> importPaths = new ArrayList<>();

  @Option(names = "--protoc", paramLabel = "EXE", defaultValue = "protoc",
      description = "protoc executable for --proto (default: ${DEFAULT-VALUE}).")
  String protoc;

  @Option(names = "--protoset", paramLabel = "FILE",
      description = "FileDescriptorSet (protoc --include_imports --descriptor_set_out=FILE).")
  Path protoset;

  @Option(names = {"-d", "--data"}, paramLabel = "JSON",
      description = "Request as JSON (an array is sent round-robin, or as the messages of a "
          + "client/bidi stream); '@' reads stdin. "
          + "Templates: {{.RequestNumber}} {{.WorkerID}} {{.UUID}} {{randomString 8}} ...")
  String data;

  @Option(names = {"-D", "--data-file"}, paramLabel = "FILE", description = "Request JSON file.")
  Path dataFile;

  @Option(names = {"-b", "--binary"},
      description = "The data is a serialized protobuf message (or several, each prefixed by its "
          + "varint length) read from stdin.")
  boolean binary;

  @Option(names = {"-B", "--binary-file"}, paramLabel = "FILE",
      description = "Binary data (as -b) from a file.")
  Path binaryFile;

  @Option(names = {"-m", "--metadata"}, paramLabel = "JSON",
      description = "Request metadata as a JSON object of strings (templates allowed).")
  String metadata;

  @Option(names = {"-M", "--metadata-file"}, paramLabel = "FILE", description = "Metadata file.")
  Path metadataFile;

  @Option(names = {"-c", "--concurrency"}, paramLabel = "N",
      description = "Workers, each with one call in flight (default: 50).")
  Integer concurrency;

  @Option(names = {"-n", "--total"}, paramLabel = "N",
      description = "Number of calls (default: 200 unless -z).")
  Long total;

  @Option(names = {"-z", "--duration"}, paramLabel = "DURATION", converter = GoDuration.class,
      description = "Run for this long instead of -n calls (e.g. 10s, 1m).")
  Duration duration;

  @Option(names = {"-x", "--max-duration"}, paramLabel = "DURATION", converter = GoDuration.class,
      description = "Stop an -n run after this long even if calls remain.")
  Duration maxDuration;

  @Option(names = {"-r", "--rps"}, paramLabel = "RATE",
      description = "Calls per second, all workers together (token bucket); default: no limit. "
          + "Latencies are then corrected for coordinated omission.")
  Double rps;

  @Mixin LoadShapeOptions shape = new LoadShapeOptions();

  @Option(names = "--skipFirst", paramLabel = "N", defaultValue = "0",
      description = "Leave the first N responses out of the statistics (warm-up).")
  long skipFirst;

  @Mixin StreamFlags streams = new StreamFlags();

  @Option(names = "--connections", paramLabel = "N", defaultValue = "1",
      description = "Channels; workers are spread over them round-robin (default: 1).")
  int connections;

  @Option(names = {"-t", "--timeout"}, paramLabel = "DURATION", converter = GoDuration.class,
      defaultValue = "20s", description = "Per-call deadline; 0 = none (default: 20s).")
  Duration timeout;

  @Option(names = "--max-recv-message-size", paramLabel = "SIZE", converter = ByteSize.class,
      description = "Largest response the client accepts: bytes or e.g. 42 MB, 4MiB "
          + "(default: 512 MiB).")
  Integer maxRecvMessageSize;

  @Option(names = "--max-send-message-size", paramLabel = "SIZE", converter = ByteSize.class,
      description = "Largest request the client sends (larger ones fail with "
          + "RESOURCE_EXHAUSTED): bytes or e.g. 42 MB (default: unlimited).")
  Integer maxSendMessageSize;

  @Option(names = "--transport", paramLabel = "auto|shm|tcp", defaultValue = "auto",
      description = "grpc-shm transport mode (default: auto: shared memory when co-located).")
  String transport;

  @Option(names = {"-O", "--format"}, split = ",", paramLabel = "FORMAT",
      description = "Output formats: summary, json, csv, html, prometheus (comma separated; "
          + "several need --output-dir). Default: summary.")
  List<String> formats = new ArrayList<>(List.of("summary"));

  @Option(names = {"-o", "--output"}, paramLabel = "FILE",
      description = "Write the (single) format here instead of stdout.")
  Path output;

  @Option(names = "--output-dir", paramLabel = "DIR",
      description = "Write summary.txt, report.json, report.csv, report.html, report.prom here.")
  Path outputDir;

  @Option(names = "--name", description = "A name for the run (shown in the report).")
  String name;

  @Mixin ConnectionFlags connection = new ConnectionFlags();

  @Option(names = "--count-errors", description = "Include failed calls in the latency "
      + "statistics (as ghz, they are left out by default; they always count in Count, "
      + "Requests/sec and the status distribution).")
  boolean countErrors;

  @Option(names = "--cpus", paramLabel = "N", description = "Run on N of the CPUs this process "
      + "may use (its CPU affinity, for every thread; ghz's GOMAXPROCS). Default: all.")
  Integer cpus;

  @Option(names = "--no-progress", description = "No progress bar even on a terminal.")
  boolean noProgress;

  @Option(names = "--progress", description = "Progress bar on stderr even when it is not a "
      + "terminal (e.g. under mvn exec:exec, which hands the tool pipes).")
  boolean forceProgress;

  /** The result of the last run (tests read it). */
  RunResult lastResult;

  /** Where -d @ and -b read from (tests replace it). */
  InputStream stdin = System.in;

  static final Map<String, String> FILES = Map.of("summary", "summary.txt", "json",
      "report.json", "csv", "report.csv", "html", "report.html", "prometheus", "report.prom");

  public static void main(String[] args) {
    System.exit(commandLine().execute(args));
  }

  static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new GrpcLoad());
    cl.setCaseInsensitiveEnumValuesAllowed(true);
    cl.setExecutionExceptionHandler((e, cmd, parseResult) -> {
      if (e instanceof IllegalArgumentException || e instanceof IllegalStateException) {
        cmd.getErr().println("grpc-load: " + e.getMessage());
        return 2;
      }
      throw e;
    });
    return cl;
  }

  /** The validated plan of a run. */
  record Plan(Runner.Config config, Set<String> formats, TransportMode mode,
      ConnectionFlags.Settings connection) {}

  /** Checks the flags; throws ParameterException with a message a person can act on. */
  Plan validate() {
    CommandLine cl = spec.commandLine();
    if (target == null) {
      throw new ParameterException(cl, "Missing target HOST:PORT");
    }
    if (call == null) {
      throw new ParameterException(cl, "Missing --call pkg.Service/Method");
    }
    try {
      DescriptorSource.splitCall(call);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(cl, e.getMessage());
    }
    if (proto != null && protoset != null) {
      throw new ParameterException(cl, "--proto and --protoset are exclusive: give one");
    }
    if (proto == null && !importPaths.isEmpty()) {
      throw new ParameterException(cl, "-i/--import-paths only apply to --proto");
    }
    if (data != null && dataFile != null) {
      throw new ParameterException(cl, "-d and -D are exclusive: give the data once");
    }
    if (binary && binaryFile != null) {
      throw new ParameterException(cl, "-b (binary data from stdin) and -B FILE are exclusive");
    }
    if ((binary || binaryFile != null) && (dataFile != null || (data != null
        && !"@".equals(data)))) {
      throw new ParameterException(cl, "binary data (-b/-B) replaces the JSON data: drop -d/-D");
    }
    if ("@".equals(data) && !binary && binaryFile != null) {
      throw new ParameterException(cl, "-d @ reads JSON from stdin, -B binary from a file: "
          + "give one");
    }
    if (metadata != null && metadataFile != null) {
      throw new ParameterException(cl, "-m and -M are exclusive: give the metadata once");
    }
    if (concurrency != null && concurrency < 1) {
      throw new ParameterException(cl, "-c must be at least 1, got " + concurrency);
    }
    if (rps != null && !(rps > 0)) {
      throw new ParameterException(cl, "-r must be a positive number of calls per second, got "
          + rps + " (leave -r out for no limit)");
    }
    Schedule concurrencySchedule = shape.concurrency(concurrency, DEFAULT_CONCURRENCY, cl);
    Schedule rateSchedule = shape.rate(rps, cl);
    int c = (int) concurrencySchedule.start();
    if (duration != null && total != null) {
      throw new ParameterException(cl, "-z (run for a duration) and -n (run for a number of "
          + "calls) are exclusive: give one");
    }
    if (duration != null && maxDuration != null) {
      throw new ParameterException(cl, "-x caps an -n run; with -z the duration already bounds "
          + "the run: drop -x");
    }
    if (duration != null && (duration.isNegative() || duration.isZero())) {
      throw new ParameterException(cl, "-z must be positive, got " + duration);
    }
    if (maxDuration != null && (maxDuration.isNegative() || maxDuration.isZero())) {
      throw new ParameterException(cl, "-x must be positive, got " + maxDuration);
    }
    long n = duration != null ? 0 : total == null ? Math.max(DEFAULT_TOTAL, c) : total;
    if (duration == null && n < 1) {
      throw new ParameterException(cl, "-n must be at least 1, got " + n);
    }
    if (duration == null && n < c) {
      if (concurrency == null && concurrencySchedule.isConstant()) {
        c = (int) n;
        concurrencySchedule = Schedule.constant(c);
      } else {
        throw new ParameterException(cl, "-n (" + n + ") is smaller than -c (" + c + "): "
            + (c - n) + " workers would have nothing to do; lower -c or raise -n");
      }
    }
    if (skipFirst < 0) {
      throw new ParameterException(cl, "--skipFirst must not be negative");
    }
    if (duration == null && skipFirst >= n) {
      throw new ParameterException(cl, "--skipFirst (" + skipFirst + ") leaves none of the -n ("
          + n + ") responses to report; lower it or raise -n");
    }
    CallExecutor.StreamOptions stream = streams.options(cl);
    if (connections < 1) {
      throw new ParameterException(cl, "--connections must be at least 1, got " + connections);
    }
    if (connections > c) {
      throw new ParameterException(cl, "--connections (" + connections + ") exceeds -c (" + c
          + "): each connection needs at least one worker");
    }
    if (timeout.isNegative()) {
      throw new ParameterException(cl, "-t must not be negative");
    }
    TransportMode mode;
    try {
      mode = Calls.mode(transport);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(cl, e.getMessage());
    }
    Set<String> fmts = new LinkedHashSet<>();
    for (String f : formats) {
      String x = f.trim().toLowerCase(Locale.ROOT);
      if (!FILES.containsKey(x)) {
        throw new ParameterException(cl, "unknown format '" + f
            + "' (summary, json, csv, html, prometheus)");
      }
      fmts.add(x);
    }
    if (fmts.size() > 1 && outputDir == null) {
      throw new ParameterException(cl, "several formats (" + fmts + ") need --output-dir");
    }
    if (noProgress && forceProgress) {
      throw new ParameterException(cl, "--progress and --no-progress are exclusive");
    }
    if (output != null && outputDir != null) {
      throw new ParameterException(cl, "-o and --output-dir are exclusive");
    }
    if (cpus != null && (cpus < 1 || cpus > CpuAffinity.allowed().size())) {
      throw new ParameterException(cl, "--cpus must be between 1 and the "
          + CpuAffinity.allowed().size() + " CPUs this process may use, got " + cpus);
    }
    ConnectionFlags.Settings conn = connection.settings(cl, mode);
    Runner.Config config = new Runner.Config(concurrencySchedule, n, duration, maxDuration,
        rateSchedule, timeout, fmts.contains("csv"), skipFirst, stream, countErrors);
    return new Plan(config, fmts, mode, conn);
  }


  @Override
  public Integer call() throws Exception {
    Plan plan = validate();
    if (cpus != null) {
      CpuAffinity.restrictProcess(cpus);
    }
    byte[] binaryData = readBinary();
    String dataJson = binaryData == null ? readData() : null;
    String metadataJson = metadataFile != null
        ? Files.readString(metadataFile, StandardCharsets.UTF_8) : metadata;
    List<ManagedChannel> channels = new ArrayList<>();
    try {
      for (int i = 0; i < connections; i++) {
        channels.add(ConnectionFlags.channel(target, plan.mode(),
            maxRecvMessageSize == null ? Calls.MAX_MESSAGE_BYTES : maxRecvMessageSize,
            plan.connection()));
      }
      for (ManagedChannel ch : channels) {
        ConnectionFlags.awaitReady(ch, target, plan.connection().connectTimeout());
      }
      com.google.protobuf.Descriptors.MethodDescriptor md;
      if (protoset != null) {
        md = DescriptorSource.fromProtoset(protoset, call);
      } else if (proto != null) {
        md = DescriptorSource.fromProtoFiles(protoc, List.of(proto), importPaths, call);
      } else {
        md = DescriptorSource.fromReflection(channels.get(0), call, 10_000);
      }
      streams.checkMethodKind(md, binary || binaryFile != null, spec.commandLine());
      RequestFactory requests = binaryData != null
          ? new RequestFactory(md, RequestFactory.parseBinary(md.getInputType(), binaryData),
              metadataJson)
          : new RequestFactory(md, dataJson, metadataJson);
      CallExecutor executor = new CallExecutor(Calls.method(md), requests,
          plan.config().timeout(), plan.config().stream(), maxSendMessageSize);
      Runner runner = new Runner(plan.config(), channels, executor);
      Progress progress = Progress.start(runner, plan.config(), noProgress, forceProgress);
      RunResult result;
      try {
        result = runner.run();
      } finally {
        if (progress != null) {
          progress.close();
        }
      }
      lastResult = result;
      write(result, plan);
      return 0;
    } finally {
      for (ManagedChannel ch : channels) {
        ch.shutdownNow();
      }
      for (ManagedChannel ch : channels) {
        ch.awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  private String readData() throws IOException {
    if (dataFile != null) {
      return Files.readString(dataFile, StandardCharsets.UTF_8);
    }
    if ("@".equals(data)) {
      return new String(stdin.readAllBytes(), StandardCharsets.UTF_8);
    }
    return data;
  }

  private byte[] readBinary() throws IOException {
    if (binaryFile != null) {
      return Files.readAllBytes(binaryFile);
    }
    return binary ? stdin.readAllBytes() : null;
  }

  Map<String, Object> optionsForReport(Plan plan) {
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("name", name);
    o.put("host", target);
    o.put("call", call);
    o.put("transport", plan.mode().name());
    o.put("concurrency", plan.config().concurrency());
    o.put("concurrencySchedule", plan.config().concurrencySchedule().describe(" workers"));
    o.put("loadSchedule", plan.config().rateSchedule() == null ? "unlimited"
        : plan.config().rateSchedule().describe(" calls/s"));
    o.put("skipFirst", skipFirst);
    o.put("binary", binary || binaryFile != null);
    o.put("total", plan.config().total());
    o.put("duration", duration == null ? null : duration.toString());
    o.put("maxDuration", maxDuration == null ? null : maxDuration.toString());
    o.put("rps", rps);
    o.put("connections", connections);
    o.put("timeout", timeout.toString());
    o.put("maxRecvMessageSize", maxRecvMessageSize == null ? Calls.MAX_MESSAGE_BYTES
        : maxRecvMessageSize);
    o.put("maxSendMessageSize", maxSendMessageSize);
    o.put("connectTimeout", plan.connection().connectTimeout().toString());
    o.put("keepalive", plan.connection().keepalive() == null ? null
        : plan.connection().keepalive().toString());
    o.put("tls", plan.connection().tls());
    o.put("countErrors", countErrors);
    o.put("cpus", cpus == null ? null : CpuAffinity.current().size());
    o.put("descriptorSource", protoset != null ? "protoset" : proto != null ? "proto"
        : "reflection");
    return o;
  }

  private void write(RunResult result, Plan plan) throws IOException {
    if (outputDir != null) {
      Files.createDirectories(outputDir);
    }
    Map<String, Object> options = optionsForReport(plan);
    for (String f : plan.formats()) {
      StringWriter sw = new StringWriter();
      PrintWriter pw = new PrintWriter(sw);
      switch (f) {
        case "summary" -> Report.summary(result, name, pw);
        case "json" -> pw.println(Report.jsonText(result, options));
        case "html" -> pw.print(HtmlReport.run(result, options));
        case "prometheus" -> PrometheusReport.write(result, options, pw);
        default -> Report.csv(result, pw);
      }
      pw.flush();
      if (outputDir != null) {
        Files.writeString(outputDir.resolve(FILES.get(f)), sw.toString(), StandardCharsets.UTF_8);
      } else if (output != null) {
        Files.writeString(output, sw.toString(), StandardCharsets.UTF_8);
      } else {
        spec.commandLine().getOut().print(sw);
        spec.commandLine().getOut().flush();
      }
    }
    if (outputDir != null) {
      spec.commandLine().getErr().println("grpc-load: wrote " + plan.formats() + " to "
          + outputDir);
    }
  }
}
