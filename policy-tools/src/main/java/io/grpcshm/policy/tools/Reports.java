package io.grpcshm.policy.tools;

import io.grpcshm.dsa.Calibration;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.policy.CallFeatures;
import io.grpcshm.policy.Decision;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.internal.Evaluation;
import io.grpcshm.policy.internal.ModelArtifact;
import io.grpcshm.policy.internal.Schema;
import io.grpcshm.policy.internal.TraceCsv;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/** The Table-5.3-shaped report shared by {@code train} and {@code evaluate}. */
final class Reports {
  private Reports() {}

  /**
   * Regression and decision figures of {@code model} on {@code test}; predictions are scaled by
   * each run's calibrated lines, as the engine deployed on that host would scale them.
   */
  static String full(ModelArtifact model, List<TraceCsv.Row> train, List<TraceCsv.Row> test) {
    List<TraceCsv.Row> all = new ArrayList<>(test);
    if (train != null) {
      all.addAll(train);
    }
    Map<String, ModelArtifact.Baseline> lines = Evaluation.hostLines(all);
    java.util.function.ToDoubleFunction<TraceCsv.Row> pred = Evaluation.deployedLog(model, lines);
    StringBuilder b = new StringBuilder();
    b.append("| Regression | |\n|---|---|\n");
    if (train != null) {
      b.append(String.format(Locale.ROOT, "| train RMSE (log) | %.4f |%n",
          Evaluation.regression(train, pred).rmseLog()));
    }
    Evaluation.Regression r = Evaluation.regression(test, pred);
    b.append(String.format(Locale.ROOT, "| test RMSE (log) | %.4f |%n", r.rmseLog()));
    b.append(String.format(Locale.ROOT, "| test MAE (µs) | %.2f |%n", r.maeUs()));
    b.append(String.format(Locale.ROOT, "| test RMSE (µs) | %.2f |%n", r.rmseUs()));
    b.append(String.format(Locale.ROOT, "| R² (µs scale) | %.4f |%n", r.r2()));
    b.append(String.format(Locale.ROOT, "| test rows | %d |%n%n", r.rows()));
    List<Evaluation.Instance> inst = Evaluation.instances(test);
    b.append(Evaluation.decisions(inst, Evaluation.modelChooser(model, lines))
        .table("Optimal configuration (model argmin, exact features)")).append('\n');
    b.append(Evaluation.decisions(inst, fallbackChooser(1 << 20))
        .table("Baseline: size-threshold fallback rule (1 MiB)")).append('\n');
    b.append(Evaluation.decisions(inst, fixedChooser(MoverKind.CPU))
        .table("Baseline: always CPU")).append('\n');
    b.append(Evaluation.decisions(inst, fixedChooser(MoverKind.SOFTWARE))
        .table("Baseline: always SOFTWARE")).append('\n');
    return b.toString();
  }


  /**
   * The model against the baselines that matter: always CPU, the best single size threshold
   * fitted on {@code train} (per mode, and over the full candidate set), the model's argmin, the
   * runtime engine, and the oracle; with a cluster-bootstrap interval (over payload sizes) of
   * the model's mean regret minus the rule's.
   */
  static String comparison(ModelArtifact model, String modelText, Set<MoverKind> movers,
      List<TraceCsv.Row> train, List<TraceCsv.Row> test) {
    StringBuilder b = new StringBuilder();
    b.append("## Against the best rule\n\n");
    b.append("Rules fitted on the training run only (lowest mean regret there):\n\n");
    Map<Mode, Evaluation.ThresholdRule> rules = new EnumMap<>(Mode.class);
    List<Evaluation.Instance> trainInst = Evaluation.instances(train);
    for (Mode m : Mode.values()) {
      List<Evaluation.Instance> tm = trainInst.stream().filter(i -> i.mode() == m).toList();
      if (!tm.isEmpty()) {
        rules.put(m, Evaluation.fitRule(tm));
        b.append("- ").append(m).append(": ").append(rules.get(m)).append('\n');
      }
    }
    Evaluation.ThresholdRule fullRule = Evaluation.fitRule(Evaluation.fullInstances(train));
    b.append("- full candidate set: ").append(fullRule).append("\n\n");

    List<Evaluation.Instance> inst = Evaluation.instances(test);
    Function<Evaluation.Instance, TraceCsv.Row> rule = in -> rules.containsKey(in.mode())
        ? rules.get(in.mode()).chooser().apply(in) : in.rows().get(0);
    Function<Evaluation.Instance, TraceCsv.Row> argmin = Evaluation.modelChooser(model,
        Evaluation.hostLines(test));
    Function<Evaluation.Instance, TraceCsv.Row> engine = engineChooser(modelText, false, movers,
        TraceCsv.calibrations(test));
    Function<Evaluation.Instance, TraceCsv.Row> cpu = fixedChooser(MoverKind.CPU);
    Function<Evaluation.Instance, TraceCsv.Row> oracle = Evaluation.Instance::oracle;
    b.append("| per-mode decisions (").append(inst.size())
        .append(" workload × mode instances) | exact choice | mean regret | total chosen latency |\n")
        .append("|---|---|---|---|\n");
    row(b, "always CPU", inst, cpu);
    row(b, "best threshold rule per mode", inst, rule);
    row(b, "model argmin", inst, argmin);
    row(b, "runtime engine", inst, engine);
    row(b, "oracle", inst, oracle);
    b.append('\n');
    ci(b, "model − rule", inst, argmin, rule);
    ci(b, "engine − rule", inst, engine, rule);
    ci(b, "model − always CPU", inst, argmin, cpu);
    b.append('\n');

    List<Evaluation.Instance> full = Evaluation.fullInstances(test);
    Function<Evaluation.Instance, TraceCsv.Row> syncCpu = in -> in.rows().stream()
        .filter(r -> r.mover() == MoverKind.CPU && r.mode() == Mode.SYNC).findFirst()
        .orElse(in.rows().get(0));
    b.append("| full candidate set (").append(full.size())
        .append(" workloads, every mover × mode) | exact choice | mean regret | total chosen latency |\n")
        .append("|---|---|---|---|\n");
    row(b, "always sync CPU", full, syncCpu);
    row(b, "best threshold rule", full, fullRule.chooser());
    row(b, "model argmin", full, argmin);
    row(b, "oracle", full, oracle);
    b.append('\n');
    ci(b, "model − rule", full, argmin, fullRule.chooser());
    b.append('\n');

    b.append("Oracle's choice per candidate (test run): ");
    Map<String, Integer> wins = new java.util.TreeMap<>();
    inst.forEach(in -> wins.merge(Evaluation.label(in.oracle()), 1, Integer::sum));
    b.append("per mode ").append(wins);
    Map<String, Integer> fullWins = new java.util.TreeMap<>();
    full.forEach(in -> fullWins.merge(Evaluation.label(in.oracle()), 1, Integer::sum));
    b.append("; full set ").append(fullWins).append("\n");
    return b.toString();
  }

  private static void row(StringBuilder b, String name, List<Evaluation.Instance> inst,
      Function<Evaluation.Instance, TraceCsv.Row> c) {
    Evaluation.Decisions d = Evaluation.decisions(inst, c);
    b.append(String.format(Locale.ROOT, "| %s | %.1f %% | %.2f %% | %.1f ms |%n", name,
        d.accuracy() * 100, d.meanRegretPct(), Evaluation.totalLatency(inst, c) / 1000));
  }

  private static void ci(StringBuilder b, String name, List<Evaluation.Instance> inst,
      Function<Evaluation.Instance, TraceCsv.Row> x, Function<Evaluation.Instance, TraceCsv.Row> y) {
    double[] d = Evaluation.bootstrapDifference(inst, x, y, BOOTSTRAP_RESAMPLES, 1);
    b.append(String.format(Locale.ROOT, "- mean regret, %s: %+.2f points, 95 %% interval [%+.2f,"
        + " %+.2f] (cluster bootstrap over %d sizes, %d resamples)%s%n", name, d[0], d[1], d[2],
        inst.stream().mapToLong(i -> i.rows().get(0).payloadBytes()).distinct().count(),
        BOOTSTRAP_RESAMPLES, d[2] < 0 ? ": lower, interval excludes 0"
            : d[1] > 0 ? ": higher, interval excludes 0" : ": not significant"));
  }

  static final int BOOTSTRAP_RESAMPLES = 2000;

  static Function<Evaluation.Instance, TraceCsv.Row> fixedChooser(MoverKind k) {
    return in -> in.rows().stream().filter(r -> r.mover() == k).findFirst()
        .orElse(in.rows().get(0));
  }

  /** The runtime's documented fallback rule (host: movers present in the traces). */
  static Function<Evaluation.Instance, TraceCsv.Row> fallbackChooser(long threshold) {
    return in -> {
      TraceCsv.Row any = in.rows().get(0);
      MoverKind want = MoverKind.CPU;
      boolean hasDsa = in.rows().stream().anyMatch(r -> r.mover() == MoverKind.DSA);
      if (any.payloadBytes() >= threshold) {
        want = hasDsa ? MoverKind.DSA : in.mode() != Mode.SYNC ? MoverKind.SOFTWARE : MoverKind.CPU;
      }
      MoverKind w = want;
      return in.rows().stream().filter(r -> r.mover() == w && !r.cacheInjection()).findFirst()
          .orElse(any);
    };
  }

  /**
   * The engine's own decisions (bucketed features, decision cache) per instance, made by an
   * engine per run and mode built with that run's calibrations (as deployed on that host); with
   * online correction it is fed the measured latency of what it chose, in trace order.
   */
  static Function<Evaluation.Instance, TraceCsv.Row> engineChooser(String modelText,
      boolean correction, java.util.Set<MoverKind> hostMovers,
      Map<String, Map<MoverKind, Calibration>> calibrations) {
    Map<String, PolicyEngine> engines = new java.util.HashMap<>();
    return in -> {
      TraceCsv.Row a = in.rows().get(0);
      CallFeatures f = new CallFeatures(a.payloadBytes(), a.reuseWindow(), a.pfRate(),
          a.llcPressure(), a.activeStreams());
      PolicyEngine e = engines.computeIfAbsent(a.runId() + "|" + in.mode(), k ->
          PolicyEngine.builder().modelText(modelText).hostMovers(hostMovers)
              .hostCalibration(calibrations.getOrDefault(a.runId(), Map.of()))
              .deploymentMode(in.mode()).onlineCorrection(correction).build());
      Decision d = e.decide(f);
      TraceCsv.Row chosen = in.rows().stream()
          .filter(r -> r.mover() == d.mover() && r.cacheInjection() == d.cacheInjection())
          .findFirst().orElse(a);
      e.observe(d, f, chosen.latencyUs());
      return chosen;
    };
  }

  /** Mode hint: per workload, the mode of the global argmin (all candidates, all modes). */
  static String modeHints(List<TraceCsv.Row> rows, ModelArtifact model) {
    Map<String, List<TraceCsv.Row>> by = new java.util.LinkedHashMap<>();
    for (TraceCsv.Row r : rows) {
      by.computeIfAbsent(r.workloadId(), k -> new ArrayList<>()).add(r);
    }
    java.util.function.ToDoubleFunction<TraceCsv.Row> pred = Evaluation.deployedLog(model,
        Evaluation.hostLines(rows));
    int n = 0;
    int correct = 0;
    List<Double> regret = new ArrayList<>();
    int expected = by.values().stream().mapToInt(List::size).max().orElse(0);
    for (List<TraceCsv.Row> rs : by.values()) {
      if (rs.size() != expected) {
        continue;
      }
      TraceCsv.Row oracle = null;
      TraceCsv.Row chosen = null;
      double best = Double.POSITIVE_INFINITY;
      for (TraceCsv.Row r : rs) {
        if (oracle == null || r.latencyUs() < oracle.latencyUs()) {
          oracle = r;
        }
        double y = pred.applyAsDouble(r);
        if (y < best) {
          best = y;
          chosen = r;
        }
      }
      n++;
      if (chosen.mode() == oracle.mode()) {
        correct++;
      }
      regret.add((chosen.latencyUs() - oracle.latencyUs()) / oracle.latencyUs() * 100);
    }
    double[] rg = regret.stream().mapToDouble(Double::doubleValue).toArray();
    return String.format(Locale.ROOT, "| Mode hint (argmin over all %d candidates per workload) | |%n"
        + "|---|---|%n| workloads | %d |%n| mode of the oracle's configuration matched | %.1f %% |%n"
        + "| regret of the global argmin, mean / p95 (%% of oracle) | %.2f %% / %.2f %% |%n",
        expected, n, n == 0 ? 0 : correct * 100.0 / n, java.util.Arrays.stream(rg).average().orElse(0),
        Evaluation.percentile(rg, 95));
  }
}
