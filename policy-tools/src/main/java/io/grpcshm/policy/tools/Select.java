package io.grpcshm.policy.tools;

import io.grpcshm.dsa.MoverKind;
import io.grpcshm.policy.internal.Evaluation;
import io.grpcshm.policy.internal.GbdtModel;
import io.grpcshm.policy.internal.ModelArtifact;
import io.grpcshm.policy.internal.TraceCsv;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code select}: model selection on ONE profiling run, so that the separate run stays untouched
 * until the final evaluation. Each candidate setting is trained and scored on two families of
 * folds, all split by workload:
 *
 * <ul>
 *   <li>random: {@code --seeds} splits holding out {@code --holdout} of the workloads (the split
 *       {@code train --seed s} makes);
 *   <li>time: the run's workloads in the order they were measured, cut into {@code --blocks}
 *       contiguous blocks, each held out once. A later block was measured under other tenants'
 *       load than the blocks it is predicted from, which is what a separate run looks like.
 * </ul>
 *
 * <p>Score per fold: exact-choice accuracy and mean regret (% of the oracle) of the model's
 * argmin, and of the runtime engine (bucketed features). The selection rule, fixed before any
 * run: the highest mean over all folds of (engine accuracy % − engine mean regret %).
 */
@Command(name = "select", mixinStandardHelpOptions = true,
    description = "Compare training settings by cross-validation on one trace file.")
public final class Select implements Callable<Integer> {
  @Option(names = "--traces", split = ",", required = true) List<Path> traces;

  @Option(names = "--seeds", defaultValue = "10", description = "random workload splits")
  int seeds;

  @Option(names = "--holdout", defaultValue = "0.2") double holdout;

  @Option(names = "--blocks", defaultValue = "5", description = "time-ordered blocks")
  int blocks;

  @Option(names = "--candidates-file",
      description = "one --candidate per line; blank lines and lines starting with # are skipped")
  Path candidatesFile;

  @Option(names = "--candidate",
      description = "name:settings, settings as train options without dashes, e.g. "
          + "\"base:trees=30 leaves=31 lr=0.3 min_data=20 objective=regression drop= "
          + "params=monotone_constraints=1,0,0,0,0,0,0,0\" (params takes the rest of the line; "
          + "unset settings take the values shown, which are train's original defaults)")
  List<String> candidates;

  @Option(names = "--out", description = "also write the table here") Path out;

  public static void main(String[] args) {
    System.exit(Cli.run(new Select(), args));
  }

  record Setting(String name, int trees, int leaves, double lr, int minData, String objective,
      List<String> drop, String params) {
    static Setting parse(String spec) {
      int colon = spec.indexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("--candidate " + spec + ": expected name:settings");
      }
      String name = spec.substring(0, colon).trim();
      String rest = spec.substring(colon + 1).trim();
      String params = "monotone_constraints=1,0,0,0,0,0,0,0";
      int p = rest.indexOf("params=");
      if (p >= 0) {
        params = rest.substring(p + "params=".length()).trim();
        rest = rest.substring(0, p).trim();
      }
      Map<String, String> kv = new LinkedHashMap<>(Map.of("trees", "30", "leaves", "31", "lr",
          "0.3", "min_data", "20", "objective", "regression", "drop", ""));
      for (String t : rest.split("\\s+")) {
        if (t.isBlank()) {
          continue;
        }
        int eq = t.indexOf('=');
        if (eq <= 0 || !kv.containsKey(t.substring(0, eq))) {
          throw new IllegalArgumentException("--candidate " + name + ": unknown setting " + t
              + " (known: " + kv.keySet() + ", params=...)");
        }
        kv.put(t.substring(0, eq), t.substring(eq + 1));
      }
      return new Setting(name, Integer.parseInt(kv.get("trees")),
          Integer.parseInt(kv.get("leaves")), Double.parseDouble(kv.get("lr")),
          Integer.parseInt(kv.get("min_data")), kv.get("objective"),
          List.of(kv.get("drop").split(",")), params);
    }

    String describe() {
      return String.format(Locale.ROOT, "trees=%d leaves=%d lr=%s min_data=%d objective=%s%s %s",
          trees, leaves, lr, minData, objective,
          drop.stream().allMatch(String::isBlank) ? "" : " drop=" + String.join(",", drop),
          params);
    }
  }

  record Fold(String name, List<TraceCsv.Row> train, List<TraceCsv.Row> test) {}

  static List<Fold> folds(List<TraceCsv.Row> all, int seeds, double holdout, int blocks) {
    List<Fold> f = new ArrayList<>();
    for (int s = 1; s <= seeds; s++) {
      List<TraceCsv.Row> tr = new ArrayList<>();
      List<TraceCsv.Row> te = new ArrayList<>();
      for (TraceCsv.Row r : all) {
        (Train.heldOut(r.workloadId(), s, holdout) ? te : tr).add(r);
      }
      f.add(new Fold("random " + s, tr, te));
    }
    // Workloads in the order they were first written (= measured; a resumed run appends).
    Map<String, Integer> order = new LinkedHashMap<>();
    for (TraceCsv.Row r : all) {
      order.putIfAbsent(r.workloadId(), order.size());
    }
    int n = order.size();
    for (int b = 0; b < blocks; b++) {
      int lo = b * n / blocks;
      int hi = (b + 1) * n / blocks;
      List<TraceCsv.Row> tr = new ArrayList<>();
      List<TraceCsv.Row> te = new ArrayList<>();
      for (TraceCsv.Row r : all) {
        int k = order.get(r.workloadId());
        (k >= lo && k < hi ? te : tr).add(r);
      }
      f.add(new Fold("time " + (b + 1) + "/" + blocks, tr, te));
    }
    return f;
  }

  @Override
  public Integer call() throws Exception {
    List<TraceCsv.Row> all = new ArrayList<>();
    for (Path p : traces) {
      all.addAll(TraceCsv.read(p));
    }
    Set<MoverKind> movers = EnumSet.noneOf(MoverKind.class);
    all.forEach(r -> movers.add(r.mover()));
    List<String> specs = new ArrayList<>(candidates == null ? List.of() : candidates);
    if (candidatesFile != null) {
      for (String line : Files.readAllLines(candidatesFile, StandardCharsets.UTF_8)) {
        if (!line.isBlank() && !line.trim().startsWith("#")) {
          specs.add(line.trim());
        }
      }
    }
    if (specs.isEmpty()) {
      throw new IllegalArgumentException("no candidates: give --candidate or --candidates-file");
    }
    List<Fold> folds = folds(all, seeds, holdout, blocks);
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "# Model selection on %s (%d rows): %d random splits "
        + "(%.0f %% of workloads held out) + %d time blocks%n%n", traces, all.size(), seeds,
        holdout * 100, blocks));
    b.append("Means over folds; acc = exact-choice accuracy, regret = mean regret (% of the "
        + "oracle); argmin = the model's argmin at exact features, engine = PolicyEngine "
        + "(bucketed). score = engine acc − engine regret, over all folds.\n\n");
    b.append("| setting | random: argmin acc / regret | random: engine acc / regret "
        + "| time: argmin acc / regret | time: engine acc / regret | score | settings |\n");
    b.append("|---|---|---|---|---|---|---|\n");
    String best = null;
    double bestScore = Double.NEGATIVE_INFINITY;
    for (String spec : specs) {
      Setting s = Setting.parse(spec);
      double[] sum = new double[8]; // random: a acc, a reg, e acc, e reg; time: same
      int[] cnt = new int[2];
      try {
        score(s, folds, movers, sum, cnt);
      } catch (Exception e) {
        String row = String.format(Locale.ROOT, "| %s | failed: %s | | | | | %s |%n", s.name(),
            e.getMessage(), s.describe());
        b.append(row);
        System.err.print(row);
        continue;
      }
      double[] mean = new double[8];
      for (int k = 0; k < 8; k++) {
        mean[k] = cnt[k / 4] == 0 ? Double.NaN : sum[k] / cnt[k / 4];
      }
      double score = (sum[2] + sum[6] - sum[3] - sum[7]) / (cnt[0] + cnt[1]);
      String row = String.format(Locale.ROOT,
          "| %s | %.1f %% / %.2f %% | %.1f %% / %.2f %% | %.1f %% / %.2f %% | %.1f %% / %.2f %% "
              + "| %.2f | %s |%n", s.name(), mean[0], mean[1], mean[2], mean[3], mean[4],
          mean[5], mean[6], mean[7], score, s.describe());
      b.append(row);
      System.err.print(row);
      if (score > bestScore) {
        bestScore = score;
        best = s.name();
      }
    }
    b.append(String.format(Locale.ROOT, "%nselected (highest score): %s%n", best));
    if (out != null) {
      Files.writeString(out, b.toString(), StandardCharsets.UTF_8);
    }
    System.out.println(b);
    return 0;
  }

  /** Adds each fold's figures to {@code sum} (see {@link #call}) and counts folds per family. */
  static void score(Setting s, List<Fold> folds, Set<MoverKind> movers, double[] sum, int[] cnt)
      throws Exception {
    for (Fold f : folds) {
      int fam = f.name().startsWith("random") ? 0 : 1;
      long seed = 7;
      String params = Train.params(s.objective(), s.leaves(), s.lr(), s.minData(), seed,
          s.params());
      Map<String, String> meta = new java.util.LinkedHashMap<>();
      ModelArtifact.Baseline base = f.train().stream().allMatch(TraceCsv.Row::hasBaseline)
          ? Train.baseline(f.train(), meta) : ModelArtifact.Baseline.NONE;
      Train.Fit fit = Train.fit(f.train(), params, s.trees(),
          Train.featureIndexes(s.drop()), List.of(), base);
      meta.put("candidates", String.join(",", movers.stream()
          .map(k -> k.name().toLowerCase(Locale.ROOT)).toList()));
      meta.put("llc_source", "proxy");
      String artifact = ModelArtifact.write(meta, fit.text());
      ModelArtifact m = ModelArtifact.parse(artifact);
      List<Evaluation.Instance> inst = Evaluation.instances(f.test());
      Evaluation.Decisions a = Evaluation.decisions(inst, Evaluation.modelChooser(m,
          Evaluation.hostLines(f.test())));
      Evaluation.Decisions e = Evaluation.decisions(inst,
          Reports.engineChooser(artifact, false, movers, TraceCsv.calibrations(f.test())));
      sum[fam * 4] += a.accuracy() * 100;
      sum[fam * 4 + 1] += a.meanRegretPct();
      sum[fam * 4 + 2] += e.accuracy() * 100;
      sum[fam * 4 + 3] += e.meanRegretPct();
      cnt[fam]++;
    }
  }
}
