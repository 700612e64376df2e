package io.grpcshm.policy.tools;

import com.microsoft.ml.lightgbm.PredictionType;
import io.github.metarank.lightgbm4j.LGBMBooster;
import io.github.metarank.lightgbm4j.LGBMDataset;
import io.grpcshm.policy.internal.GbdtModel;
import io.grpcshm.policy.internal.ModelArtifact;
import io.grpcshm.policy.internal.Schema;
import io.grpcshm.policy.internal.TraceCsv;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code train}: LightGBM regression on log(1+latency_us) with the configuration as categorical
 * features; a held-out split by workload (never the same workload in both); writes the model
 * artifact and a Table-5.3-shaped report. The only class that touches LightGBM (native code):
 * the runtime never loads it.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
    description = "Train the policy model from profile traces.")
public final class Train implements Callable<Integer> {
  @Option(names = "--traces", split = ",", required = true, description = "trace CSV file(s)")
  List<Path> traces;

  @Option(names = "--out", defaultValue = "target/policy", description = "output directory")
  Path out;

  @Option(names = "--model-out", description = "model file (default <out>/model.txt)")
  Path modelOut;

  @Option(names = "--holdout", defaultValue = "0.2", description = "fraction of workloads held out")
  double holdout;

  @Option(names = "--seed", defaultValue = "7") long seed;
  // Defaults: 30 trees x 31 leaves, learning rate 0.3, monotone payload/pf/llc, all signals
  // used: `select`'s choice on a general training run. The shipped model's own options differ;
  // POLICY.md § Default model gives its exact command.
  @Option(names = "--trees", defaultValue = "30") int trees;
  @Option(names = "--leaves", defaultValue = "31") int leaves;
  @Option(names = "--learning-rate", defaultValue = "0.3") double learningRate;
  @Option(names = "--min-data", defaultValue = "20") int minData;

  @Option(names = "--objective", defaultValue = "regression",
      description = "regression (L2) or regression_l1 (L1), on log(1+latency_us)")
  String objective;

  @Option(names = "--target", defaultValue = "residual",
      description = "residual: log(1+latency) minus log(1+ the mover's calibrated line, from the"
          + " traces' base_* columns), so predictions beyond the profiled sizes follow the line;"
          + " raw: log(1+latency)")
  String target;

  @Option(names = "--residual-size-cap", defaultValue = "none",
      description = "with --target residual: the trees see payload sizes capped here (K/M/G"
          + " suffix, or none), so beyond it only the mover's line depends on the size")
  String residualSizeCap;

  @Option(names = "--drop", split = ",", defaultValue = "",
      description = "context features the model may not use (held at 0 in training), e.g. pf_rate")
  List<String> drop;

  // Latency never falls when the payload, the page-fault rate or the LLC pressure grows. The
  // constraints keep the trees from fitting per-workload noise in the two signals (both are
  // constant within a workload's traces).
  @Option(names = "--params", defaultValue = "monotone_constraints=1,0,1,1,0,0,0,0",
      description = "extra LightGBM parameters, e.g. \"lambda_l2=1 monotone_constraints=1,0,1,1,0,0,0,0\"")
  String extra;

  public static void main(String[] args) {
    System.exit(Cli.run(new Train(), args));
  }

  static boolean heldOut(String workloadId, long seed, double fraction) {
    long h = (workloadId.hashCode() * 0x9E3779B97F4A7C15L) ^ seed * 0xC2B2AE3D27D4EB4FL;
    h ^= h >>> 29;
    h *= 0xBF58476D1CE4E5B9L;
    h ^= h >>> 32;
    return ((h >>> 11) * 0x1.0p-53) < fraction;
  }

  static double[] matrix(List<TraceCsv.Row> rows) {
    return matrix(rows, new int[0], Double.POSITIVE_INFINITY);
  }

  /**
   * The feature matrix, with the {@code dropped} columns held at 0 (no split can use them) and
   * payload sizes capped at {@code sizeCap}.
   */
  static double[] matrix(List<TraceCsv.Row> rows, int[] dropped, double sizeCap) {
    double[] m = new double[rows.size() * Schema.WIDTH];
    double[] x = new double[Schema.WIDTH];
    for (int i = 0; i < rows.size(); i++) {
      rows.get(i).features(x);
      for (int d : dropped) {
        x[d] = 0;
      }
      x[Schema.PAYLOAD_BYTES] = Math.min(x[Schema.PAYLOAD_BYTES], sizeCap);
      System.arraycopy(x, 0, m, i * Schema.WIDTH, Schema.WIDTH);
    }
    return m;
  }

  /** Schema indexes of the named context features. */
  static int[] featureIndexes(List<String> names) {
    return names.stream().filter(n -> !n.isBlank()).mapToInt(n -> {
      int k = Schema.FEATURES.indexOf(n.trim());
      if (k < 0 || k > Schema.ACTIVE_STREAMS) {
        throw new IllegalArgumentException("--drop " + n + ": not a context feature "
            + Schema.FEATURES.subList(0, Schema.ACTIVE_STREAMS + 1));
      }
      return k;
    }).toArray();
  }

  /** LightGBM's parameters for these settings. */
  static String params(String objective, int leaves, double learningRate, int minData, long seed,
      String extra) {
    if (!objective.equals("regression") && !objective.equals("regression_l1")) {
      throw new IllegalArgumentException("--objective " + objective
          + ": only regression and regression_l1 (raw score = prediction)");
    }
    String cat = Arrays.stream(Schema.CATEGORICAL).mapToObj(Integer::toString)
        .collect(Collectors.joining(","));
    return String.format(Locale.ROOT, "objective=%s metric=rmse num_leaves=%d "
        + "learning_rate=%s min_data_in_leaf=%d seed=%d deterministic=true num_threads=1 "
        + "force_row_wise=true verbose=-1 categorical_feature=%s min_data_per_group=5 "
        + "cat_smooth=1 %s", objective, leaves, learningRate, minData, seed, cat, extra).trim();
  }

  /** A trained model: LightGBM's text and its predictions for {@code predict} (may be empty). */
  record Fit(String text, double[] predictions) {}

  /**
   * Per mover, the calibrated line of the traces (µs fixed, µs per MiB): the median over the
   * rows, so one line per mover even where runs were calibrated apart. Every row must have one.
   */
  static ModelArtifact.Baseline baseline(List<TraceCsv.Row> rows, Map<String, String> meta) {
    Map<io.grpcshm.dsa.MoverKind, List<double[]>> by = new java.util.EnumMap<>(
        io.grpcshm.dsa.MoverKind.class);
    for (TraceCsv.Row r : rows) {
      if (!r.hasBaseline()) {
        throw new IllegalArgumentException("--target residual needs the movers' calibrated lines"
            + " (base_fixed_us, base_us_per_mib): workload " + r.workloadId() + " has none"
            + " (traces from before they were recorded, or --no-calibrate); use --target raw");
      }
      by.computeIfAbsent(r.mover(), k -> new ArrayList<>())
          .add(new double[] {r.baseFixedUs(), r.baseUsPerMib()});
    }
    Map<io.grpcshm.dsa.MoverKind, double[]> lines = new java.util.EnumMap<>(
        io.grpcshm.dsa.MoverKind.class);
    by.forEach((k, v) -> lines.put(k, new double[] {
        median(v.stream().mapToDouble(d -> d[0]).toArray()),
        median(v.stream().mapToDouble(d -> d[1]).toArray())}));
    String text = ModelArtifact.Baseline.format(lines);
    meta.put("baseline", text);
    return ModelArtifact.Baseline.parse(text);
  }

  private static double median(double[] v) {
    double[] s = v.clone();
    Arrays.sort(s);
    return s[s.length / 2];
  }

  /** Training label of a row: log(1+latency), less the baseline's log(1+line) if any. */
  static double label(TraceCsv.Row r, ModelArtifact.Baseline base) {
    return Math.log1p(r.latencyUs()) - base.log1p(r.mover().ordinal(), r.payloadBytes());
  }

  static Fit fit(List<TraceCsv.Row> rows, String params, int trees, int[] dropped,
      List<TraceCsv.Row> predict) throws Exception {
    return fit(rows, params, trees, dropped, predict, ModelArtifact.Baseline.NONE);
  }

  /** Trains on {@code rows} (label: {@link #label}); deterministic for the same inputs. */
  static Fit fit(List<TraceCsv.Row> rows, String params, int trees, int[] dropped,
      List<TraceCsv.Row> predict, ModelArtifact.Baseline base) throws Exception {
    return fit(rows, params, trees, dropped, predict, base, Double.POSITIVE_INFINITY);
  }

  /** As above, with the payload sizes the trees see capped at {@code sizeCap}. */
  static Fit fit(List<TraceCsv.Row> rows, String params, int trees, int[] dropped,
      List<TraceCsv.Row> predict, ModelArtifact.Baseline base, double sizeCap) throws Exception {
    try (LGBMDataset ds = LGBMDataset.createFromMat(matrix(rows, dropped, sizeCap), rows.size(),
        Schema.WIDTH, true, params, null)) {
      ds.setFeatureNames(Schema.FEATURES.toArray(String[]::new));
      float[] label = new float[rows.size()];
      for (int i = 0; i < label.length; i++) {
        label[i] = (float) label(rows.get(i), base);
      }
      ds.setField("label", label);
      try (LGBMBooster booster = LGBMBooster.create(ds, params)) {
        for (int i = 0; i < trees; i++) {
          if (booster.updateOneIter()) {
            break;
          }
        }
        String text = booster.saveModelToString(0, 0, LGBMBooster.FeatureImportanceType.SPLIT);
        double[] p = predict.isEmpty() ? new double[0]
            : booster.predictForMat(matrix(predict, new int[0], sizeCap), predict.size(),
                Schema.WIDTH, true,
                PredictionType.C_API_PREDICT_NORMAL);
        return new Fit(text, p);
      }
    }
  }

  @Override
  public Integer call() throws Exception {
    List<TraceCsv.Row> all = new ArrayList<>();
    for (Path p : traces) {
      all.addAll(TraceCsv.read(p));
    }
    List<TraceCsv.Row> train = new ArrayList<>();
    List<TraceCsv.Row> test = new ArrayList<>();
    for (TraceCsv.Row r : all) {
      (heldOut(r.workloadId(), seed, holdout) ? test : train).add(r);
    }
    if (train.isEmpty() || test.isEmpty()) {
      throw new IllegalArgumentException("need rows on both sides of the split (train "
          + train.size() + ", test " + test.size() + ")");
    }
    int[] dropped = featureIndexes(drop);
    String params = params(objective, leaves, learningRate, minData, seed, extra);
    Map<String, String> meta = new LinkedHashMap<>();
    ModelArtifact.Baseline base = switch (target) {
      case "residual" -> baseline(all, meta);
      case "raw" -> ModelArtifact.Baseline.NONE;
      default -> throw new IllegalArgumentException("--target " + target + ": residual or raw");
    };
    double sizeCap = Double.POSITIVE_INFINITY;
    if (!residualSizeCap.equals("none")) {
      if (base == ModelArtifact.Baseline.NONE) {
        throw new IllegalArgumentException("--residual-size-cap needs --target residual");
      }
      sizeCap = Profile.parseSize(residualSizeCap);
      meta.put(ModelArtifact.SIZE_CAP_KEY, Long.toString((long) sizeCap));
    }
    Fit fit = fit(train, params, trees, dropped, test, base, sizeCap);
    String text = fit.text();
    double[] lgbmTest = fit.predictions();
    TreeSet<String> cands = new TreeSet<>();
    TreeSet<String> llcSources = new TreeSet<>();
    for (TraceCsv.Row r : all) {
      cands.add(r.mover() == io.grpcshm.dsa.MoverKind.DSA
          ? "dsa" + (r.cacheInjection() ? "+inject" : "+bypass")
          : r.mover().name().toLowerCase(Locale.ROOT));
      llcSources.add(r.llcSource());
    }
    meta.put("candidates", String.join(",", cands));
    meta.put("llc_source", String.join(",", llcSources));
    meta.put("trained", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
    meta.put("traces", traces.stream().map(p -> p.getFileName().toString())
        .collect(Collectors.joining(",")) + " (" + all.size() + " rows)");
    meta.put("params", params + " trees=" + trees + " holdout=" + holdout
        + (dropped.length == 0 ? "" : " drop=" + String.join(",", drop)));
    String artifact = ModelArtifact.write(meta, text);
    ModelArtifact parsed = ModelArtifact.parse(artifact);
    GbdtModel model = parsed.model();

    // The pure-Java evaluator must agree with LightGBM exactly on the held-out rows.
    double maxDiff = 0;
    double[] x = new double[Schema.WIDTH];
    for (int i = 0; i < test.size(); i++) {
      test.get(i).features(x);
      maxDiff = Math.max(maxDiff, Math.abs(parsed.predictTrees(x) - lgbmTest[i]));
    }

    Files.createDirectories(out);
    Path modelFile = modelOut != null ? modelOut : out.resolve("model.txt");
    if (modelFile.toAbsolutePath().getParent() != null) {
      Files.createDirectories(modelFile.toAbsolutePath().getParent());
    }
    Files.writeString(modelFile, artifact, StandardCharsets.UTF_8);
    StringBuilder rep = new StringBuilder();
    rep.append("# Policy model evaluation (train split)\n\n");
    rep.append("traces: ").append(meta.get("traces")).append("; ").append(train.size())
        .append(" train rows, ").append(test.size()).append(" held-out rows (")
        .append(holdout * 100).append(" % of workloads, by workload id)\n\n");
    rep.append("model: ").append(modelFile).append(" (").append(model.numTrees()).append(" trees, ")
        .append(model.numNodes()).append(" split nodes, ").append(artifact.length())
        .append(" bytes)\n\n");
    rep.append(String.format(Locale.ROOT,
        "pure-Java vs LightGBM on held-out rows: max |diff| = %.3g%n%n", maxDiff));
    rep.append(Reports.full(ModelArtifact.parse(artifact), train, test));
    Files.writeString(out.resolve("report.md"), rep.toString(), StandardCharsets.UTF_8);
    System.out.println(rep);
    System.err.println("train: wrote " + modelFile + " and " + out.resolve("report.md"));
    return maxDiff == 0 ? 0 : 2;
  }
}
