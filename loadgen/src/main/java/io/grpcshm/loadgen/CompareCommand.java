package io.grpcshm.loadgen;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.DynamicMessage;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code grpc-load compare}: the same unary call over shared memory, TCP (and stock Netty over a
 * Unix domain socket and in-process, for the built-in echo service hosted in this JVM) for
 * several payload sizes. Transports take turns
 * within each round (the order rotates per round) so machine noise spreads over all of them.
 */
@Command(name = "compare", mixinStandardHelpOptions = true, sortOptions = false,
    usageHelpWidth = 100,
    description = "Compares transports (shm, tcp, uds, inproc) x payload sizes for one unary "
        + "call, interleaved, with ratios. With no target it hosts the built-in echo service in "
        + "this JVM (then uds and inproc are available too).")
final class CompareCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", arity = "0..1", paramLabel = "HOST:PORT",
      description = "Target; leave out to host the built-in echo service in this JVM.")
  String target;

  @Option(names = "--call", defaultValue = BuiltinEcho.CALL,
      description = "Method (default: ${DEFAULT-VALUE}).")
  String call;

  @Option(names = "--protoset", paramLabel = "FILE",
      description = "FileDescriptorSet; default: server reflection.")
  Path protoset;

  @Option(names = {"-d", "--data"}, paramLabel = "JSON", defaultValue = "{}",
      description = "Base request JSON; the payload field is set on top of it.")
  String data;

  @Option(names = "--payload-field", defaultValue = "payload",
      description = "bytes or string field filled with SIZE bytes (default: ${DEFAULT-VALUE}).")
  String payloadField;

  @Option(names = "--sizes", split = ",", defaultValue = "100,64KiB,1MiB",
      description = "Payload sizes: bytes or with KiB/MiB (default: ${DEFAULT-VALUE}).")
  List<String> sizes;

  @Option(names = "--transports", split = ",",
      description = "shm, tcp, uds (stock Netty over a Unix domain socket), inproc (default: "
          + "shm,tcp and, when hosting the echo service, uds and inproc too).")
  List<String> transports;

  @Option(names = {"-n", "--calls"}, defaultValue = "50",
      description = "Calls per transport, size and round (default: ${DEFAULT-VALUE}).")
  int calls;

  @Option(names = "--rounds", defaultValue = "5", description = "Measured rounds (default: "
      + "${DEFAULT-VALUE}).")
  int rounds;

  @Option(names = "--warmup-rounds", defaultValue = "1", description = "Unmeasured rounds "
      + "first (default: ${DEFAULT-VALUE}).")
  int warmupRounds;

  @Option(names = {"-c", "--concurrency"}, defaultValue = "1",
      description = "Calls in flight per cell (default: ${DEFAULT-VALUE}).")
  int concurrency;

  @Option(names = {"-O", "--format"}, split = ",", defaultValue = "table",
      description = "table, json, html (comma separated; several need --output-dir). Default: "
          + "${DEFAULT-VALUE}.")
  List<String> formats;

  @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "Write here.")
  Path output;

  @Option(names = "--output-dir", paramLabel = "DIR",
      description = "Write compare.txt, compare.json, compare.html here.")
  Path outputDir;

  static final Map<String, String> FILES = Map.of("table", "compare.txt", "json",
      "compare.json", "html", "compare.html");

  /** The last comparison (tests read it). */
  JsonObject lastJson;

  static long parseSize(String s) {
    String t = s.trim();
    long mult = 1;
    if (t.endsWith("KiB") || t.endsWith("K")) {
      mult = 1024;
    } else if (t.endsWith("MiB") || t.endsWith("M")) {
      mult = 1024 * 1024;
    }
    String digits = t.replaceAll("(KiB|MiB|K|M|B)$", "");
    try {
      long v = Long.parseLong(digits) * mult;
      if (v < 0 || v > Calls.MAX_MESSAGE_BYTES / 2) {
        throw new IllegalArgumentException("payload size out of range: " + s);
      }
      return v;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a size: '" + s + "' (e.g. 100, 64KiB, 1MiB)", e);
    }
  }

  @Override
  public Integer call() throws Exception {
    if (calls < 1 || rounds < 1 || warmupRounds < 0 || concurrency < 1) {
      throw new ParameterException(spec.commandLine(),
          "-n, --rounds and -c must be at least 1, --warmup-rounds at least 0");
    }
    if (calls < concurrency) {
      throw new ParameterException(spec.commandLine(), "-n (" + calls + ") is smaller than -c ("
          + concurrency + ")");
    }
    for (String f : formats) {
      if (!FILES.containsKey(f)) {
        throw new ParameterException(spec.commandLine(), "-O takes table, json or html, got '"
            + f + "'");
      }
    }
    if (formats.size() > 1 && outputDir == null) {
      throw new ParameterException(spec.commandLine(), "several formats " + formats
          + " need --output-dir");
    }
    if (output != null && outputDir != null) {
      throw new ParameterException(spec.commandLine(), "-o and --output-dir are exclusive");
    }
    boolean hosted = target == null;
    if (hosted && !call.equals(BuiltinEcho.CALL)) {
      throw new ParameterException(spec.commandLine(), "without a target only the built-in "
          + BuiltinEcho.CALL + " can be hosted; give HOST:PORT for other services");
    }
    List<String> modes = transports != null ? transports
        : hosted ? List.of("shm", "tcp", "uds", "inproc") : List.of("shm", "tcp");
    for (String m : modes) {
      if (!List.of("shm", "tcp", "uds", "inproc").contains(m)) {
        throw new ParameterException(spec.commandLine(), "unknown transport '" + m
            + "' (shm, tcp, uds, inproc)");
      }
      if ((m.equals("inproc") || m.equals("uds")) && !hosted) {
        throw new ParameterException(spec.commandLine(), m + " needs the service in this JVM: "
            + "only the built-in echo service (no target) can be hosted on it");
      }
    }
    List<Long> sizeList = new ArrayList<>();
    for (String s : sizes) {
      sizeList.add(parseSize(s));
    }

    Server tcpShmServer = null;
    Server inprocServer = null;
    UnixSocketEcho uds = null;
    Map<String, ManagedChannel> channels = new LinkedHashMap<>();
    try {
      String tgt = target;
      String inprocName = "grpc-load-compare-" + ProcessHandle.current().pid();
      if (hosted) {
        tcpShmServer = BuiltinEcho.start(0);
        tgt = "localhost:" + tcpShmServer.getPort();
        inprocServer = InProcessServerBuilder.forName(inprocName).addService(new BuiltinEcho())
            .build().start();
        if (modes.contains("uds")) {
          uds = new UnixSocketEcho();
        }
      }
      for (String m : modes) {
        channels.put(m, switch (m) {
          case "shm" -> Calls.channel(tgt, TransportMode.SHM_ONLY);
          case "tcp" -> Calls.channel(tgt, TransportMode.TCP_ONLY);
          case "uds" -> uds.channel();
          default -> InProcessChannelBuilder.forName(inprocName)
              .maxInboundMessageSize(Calls.MAX_MESSAGE_BYTES).build();
        });
      }
      MethodDescriptor md = protoset != null ? DescriptorSource.fromProtoset(protoset, call)
          : DescriptorSource.fromReflection(channels.values().iterator().next(), call, 10_000);
      FieldDescriptor field = md.getInputType().findFieldByName(payloadField);
      if (field == null || field.isRepeated() || (field.getType() != FieldDescriptor.Type.BYTES
          && field.getType() != FieldDescriptor.Type.STRING)) {
        throw new IllegalArgumentException(md.getInputType().getFullName() + " has no singular "
            + "bytes/string field '" + payloadField + "' (see --payload-field)");
      }
      if (md.isClientStreaming() || md.isServerStreaming()) {
        throw new IllegalArgumentException(md.getFullName() + " is a streaming method; compare "
            + "measures unary calls");
      }
      io.grpc.MethodDescriptor<DynamicMessage, DynamicMessage> method = Calls.method(md);
      Map<String, Map<Long, Cell>> cells = new LinkedHashMap<>();
      List<RequestFactory> factories = new ArrayList<>();
      Random random = new Random(42);
      for (long size : sizeList) {
        DynamicMessage.Builder b = RequestFactory.base(md, data);
        if (field.getType() == FieldDescriptor.Type.BYTES) {
          byte[] bytes = new byte[(int) size];
          random.nextBytes(bytes);
          b.setField(field, ByteString.copyFrom(bytes));
        } else {
          b.setField(field, "x".repeat((int) size));
        }
        factories.add(new RequestFactory(md, b.build()));
      }
      for (String m : modes) {
        Map<Long, Cell> row = new LinkedHashMap<>();
        for (long size : sizeList) {
          row.put(size, new Cell());
        }
        cells.put(m, row);
      }
      Runner.Config cfg = Runner.Config.simple(concurrency, calls, null, null, 0,
          Duration.ofSeconds(60), false);
      PrintWriter err = spec.commandLine().getErr();
      for (int round = 0; round < warmupRounds + rounds; round++) {
        boolean measured = round >= warmupRounds;
        for (int si = 0; si < sizeList.size(); si++) {
          for (int k = 0; k < modes.size(); k++) {
            String m = modes.get((k + round) % modes.size());
            RunResult r = new Runner(cfg, List.of(channels.get(m)),
                new CallExecutor(method, factories.get(si), cfg.timeout(),
                    CallExecutor.StreamOptions.NONE))
                .run();
            if (measured) {
              cells.get(m).get(sizeList.get(si)).add(r);
            }
          }
        }
        if (Progress.onTerminal()) {
          err.printf("\rcompare: round %d/%d%s", round + 1, warmupRounds + rounds,
              round + 1 == warmupRounds + rounds ? "\n" : "");
          err.flush();
        }
      }
      JsonObject json = toJson(cells, sizeList, modes, hosted, tgt);
      lastJson = json;
      for (String f : formats) {
        String text = switch (f) {
          case "json" -> new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create()
              .toJson(json) + "\n";
          case "html" -> HtmlReport.compare(json);
          default -> table(cells, sizeList, modes);
        };
        if (outputDir != null) {
          Files.createDirectories(outputDir);
          Files.writeString(outputDir.resolve(FILES.get(f)), text, StandardCharsets.UTF_8);
        } else if (output != null) {
          Files.writeString(output, text, StandardCharsets.UTF_8);
        } else {
          spec.commandLine().getOut().print(text);
          spec.commandLine().getOut().flush();
        }
      }
      return 0;
    } finally {
      for (ManagedChannel ch : channels.values()) {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      if (tcpShmServer != null) {
        tcpShmServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      if (inprocServer != null) {
        inprocServer.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      if (uds != null) {
        uds.close();
      }
    }
  }

  /** One transport x size: all measured rounds merged. */
  static final class Cell {
    final Histogram latency = new Histogram(3);
    long nanos;
    long errors;
    final Map<TransportPath, Long> paths = new EnumMap<>(TransportPath.class);

    void add(RunResult r) {
      latency.add(r.raw());
      nanos += r.totalNanos();
      r.codes().forEach((code, n) -> {
        if (code != Status.Code.OK) {
          errors += n;
        }
      });
      r.paths().forEach((p, n) -> paths.merge(p, n, Long::sum));
    }

    double rps() {
      return nanos == 0 ? 0 : latency.getTotalCount() * 1e9 / nanos;
    }
  }

  private JsonObject toJson(Map<String, Map<Long, Cell>> cells, List<Long> sizes,
      List<String> modes, boolean hosted, String tgt) {
    JsonObject o = new JsonObject();
    o.addProperty("call", call);
    o.addProperty("target", tgt);
    o.addProperty("hostedInThisJvm", hosted);
    o.addProperty("callsPerCellPerRound", calls);
    o.addProperty("rounds", rounds);
    o.addProperty("warmupRounds", warmupRounds);
    o.addProperty("concurrency", concurrency);
    o.addProperty("unit", "ns");
    JsonArray results = new JsonArray();
    for (long size : sizes) {
      JsonObject s = new JsonObject();
      s.addProperty("payloadBytes", size);
      JsonObject byTransport = new JsonObject();
      for (String m : modes) {
        Cell c = cells.get(m).get(size);
        JsonObject x = new JsonObject();
        x.addProperty("count", c.latency.getTotalCount());
        x.addProperty("errors", c.errors);
        x.addProperty("p50", c.latency.getValueAtPercentile(50));
        x.addProperty("p90", c.latency.getValueAtPercentile(90));
        x.addProperty("p99", c.latency.getValueAtPercentile(99));
        x.addProperty("mean", (long) c.latency.getMean());
        x.addProperty("rps", c.rps());
        x.addProperty("requestMBps", c.rps() * size / 1e6);
        JsonObject paths = new JsonObject();
        c.paths.forEach((p, n) -> paths.addProperty(p.name(), n));
        x.add("transportPaths", paths);
        byTransport.add(m, x);
      }
      s.add("transports", byTransport);
      JsonObject ratios = new JsonObject();
      if (modes.contains("shm") && modes.contains("tcp")) {
        ratios.addProperty("tcpP50OverShmP50", ratio(cells, "tcp", "shm", size));
      }
      if (modes.contains("shm") && modes.contains("uds")) {
        ratios.addProperty("udsP50OverShmP50", ratio(cells, "uds", "shm", size));
      }
      if (modes.contains("shm") && modes.contains("inproc")) {
        ratios.addProperty("shmP50OverInprocP50", ratio(cells, "shm", "inproc", size));
      }
      s.add("ratios", ratios);
      results.add(s);
    }
    o.add("results", results);
    return o;
  }

  private static double ratio(Map<String, Map<Long, Cell>> cells, String a, String b, long size) {
    long x = cells.get(a).get(size).latency.getValueAtPercentile(50);
    long y = cells.get(b).get(size).latency.getValueAtPercentile(50);
    return y == 0 ? 0 : (double) x / y;
  }

  private static String table(Map<String, Map<Long, Cell>> cells, List<Long> sizes,
      List<String> modes) {
    StringBuilder sb = new StringBuilder();
    sb.append(String.format(Locale.ROOT, "%-10s %-7s %10s %10s %10s %10s %7s%n", "payload",
        "path", "p50", "p99", "mean", "calls/s", "errors"));
    for (long size : sizes) {
      for (String m : modes) {
        Cell c = cells.get(m).get(size);
        sb.append(String.format(Locale.ROOT, "%-10s %-7s %10s %10s %10s %10.1f %7d%n",
            sizeText(size), m, Report.duration(c.latency.getValueAtPercentile(50)),
            Report.duration(c.latency.getValueAtPercentile(99)),
            Report.duration((long) c.latency.getMean()), c.rps(), c.errors));
      }
      if (modes.contains("shm") && modes.contains("tcp")) {
        sb.append(String.format(Locale.ROOT, "%-10s p50 tcp/shm = %.2fx%n", "",
            ratio(cells, "tcp", "shm", size)));
      }
      if (modes.contains("shm") && modes.contains("uds")) {
        sb.append(String.format(Locale.ROOT, "%-10s p50 uds/shm = %.2fx%n", "",
            ratio(cells, "uds", "shm", size)));
      }
      if (modes.contains("shm") && modes.contains("inproc")) {
        sb.append(String.format(Locale.ROOT, "%-10s p50 shm/inproc = %.2fx%n", "",
            ratio(cells, "shm", "inproc", size)));
      }
    }
    return sb.toString();
  }

  static String sizeText(long size) {
    if (size >= 1 << 20 && size % (1 << 20) == 0) {
      return (size >> 20) + " MiB";
    }
    if (size >= 1024 && size % 1024 == 0) {
      return (size >> 10) + " KiB";
    }
    return size + " B";
  }
}
