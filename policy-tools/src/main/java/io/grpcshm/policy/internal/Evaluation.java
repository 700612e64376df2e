package io.grpcshm.policy.internal;

import io.grpcshm.dsa.Mode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * Scores a model on traces the way thesis Table 5.3 does: regression error (log and µs scale,
 * R²) and the quality of the decisions it leads to. A decision instance is one workload under
 * one deployment mode; its candidates are the movers (× cache injection) measured there; the
 * oracle is the fastest measured one. Classes are {@code mode_mover}, as in the thesis.
 * Regret = measured latency of the chosen candidate minus the oracle's.
 */
public final class Evaluation {
  private Evaluation() {}

  /** Rows of one decision instance, keyed on the candidate. */
  public record Instance(String workloadId, Mode mode, List<TraceCsv.Row> rows) {
    public TraceCsv.Row oracle() {
      return rows.stream().min((a, b) -> Double.compare(a.latencyUs(), b.latencyUs()))
          .orElseThrow();
    }
  }

  /** Decision instances (complete ones: every mover the traces have for that mode). */
  public static List<Instance> instances(List<TraceCsv.Row> rows) {
    Map<String, Map<String, TraceCsv.Row>> by = new LinkedHashMap<>();
    TreeSet<String> movers = new TreeSet<>();
    for (TraceCsv.Row r : rows) {
      String cand = label(r);
      movers.add(moverLabel(r));
      // Last row wins: a resumed sweep may have re-measured a workload.
      by.computeIfAbsent(r.workloadId() + "|" + r.mode(), k -> new LinkedHashMap<>())
          .put(cand, r);
    }
    List<Instance> out = new ArrayList<>();
    for (var e : by.entrySet()) {
      if (e.getValue().size() == movers.size()) {
        List<TraceCsv.Row> rs = new ArrayList<>(e.getValue().values());
        out.add(new Instance(rs.get(0).workloadId(), rs.get(0).mode(), rs));
      }
    }
    return out;
  }

  static String moverLabel(TraceCsv.Row r) {
    String m = r.mover().name().toLowerCase(Locale.ROOT);
    return r.mover() == io.grpcshm.dsa.MoverKind.DSA ? m + (r.cacheInjection() ? "+inject" : "+bypass") : m;
  }

  public static String label(TraceCsv.Row r) {
    return r.mode().name().toLowerCase(Locale.ROOT) + "_" + moverLabel(r);
  }

  /** Figures of one chooser on a set of instances. */
  public record Decisions(int instances, double accuracy, double macroF1,
      Map<String, double[]> perClass, double meanRegretUs, double p95RegretUs,
      double meanRegretPct, double p95RegretPct, double meanRegretOnMissUs) {

    public String table(String title) {
      StringBuilder b = new StringBuilder();
      b.append(String.format(Locale.ROOT, "| %s | |%n|---|---|%n", title));
      b.append(String.format(Locale.ROOT, "| decision instances (workload × mode) | %d |%n", instances));
      b.append(String.format(Locale.ROOT, "| exact-choice accuracy | %.1f %% |%n", accuracy * 100));
      b.append(String.format(Locale.ROOT, "| macro-F1 | %.3f |%n", macroF1));
      b.append(String.format(Locale.ROOT, "| regret mean / p95 (µs) | %.2f / %.2f |%n", meanRegretUs, p95RegretUs));
      b.append(String.format(Locale.ROOT, "| regret mean / p95 (%% of oracle) | %.2f %% / %.2f %% |%n", meanRegretPct, p95RegretPct));
      b.append(String.format(Locale.ROOT, "| deviation when wrong, mean (µs) | %.2f |%n", meanRegretOnMissUs));
      for (var e : perClass.entrySet()) {
        double[] v = e.getValue();
        b.append(String.format(Locale.ROOT, "| %s | precision %.2f, recall %.2f, F1 %.2f, support %d |%n",
            e.getKey(), v[0], v[1], v[2], (int) v[3]));
      }
      return b.toString();
    }
  }

  /** Scores a chooser (instance → chosen row). */
  public static Decisions decisions(List<Instance> inst, Function<Instance, TraceCsv.Row> chooser) {
    Map<String, int[]> counts = new TreeMap<>(); // tp, fp, fn, support
    int correct = 0;
    double[] regret = new double[inst.size()];
    double[] regretPct = new double[inst.size()];
    double missSum = 0;
    int misses = 0;
    for (int i = 0; i < inst.size(); i++) {
      Instance in = inst.get(i);
      TraceCsv.Row oracle = in.oracle();
      TraceCsv.Row chosen = chooser.apply(in);
      String t = label(oracle);
      String p = label(chosen);
      counts.computeIfAbsent(t, k -> new int[4])[3]++;
      counts.computeIfAbsent(p, k -> new int[4]);
      if (t.equals(p)) {
        correct++;
        counts.get(t)[0]++;
      } else {
        counts.get(p)[1]++;
        counts.get(t)[2]++;
      }
      regret[i] = chosen.latencyUs() - oracle.latencyUs();
      regretPct[i] = oracle.latencyUs() > 0 ? regret[i] / oracle.latencyUs() * 100 : 0;
      if (!t.equals(p)) {
        missSum += regret[i];
        misses++;
      }
    }
    Map<String, double[]> per = new LinkedHashMap<>();
    double f1Sum = 0;
    for (var e : counts.entrySet()) {
      int[] c = e.getValue();
      double prec = c[0] + c[1] == 0 ? 0 : c[0] / (double) (c[0] + c[1]);
      double rec = c[0] + c[2] == 0 ? 0 : c[0] / (double) (c[0] + c[2]);
      double f1 = prec + rec == 0 ? 0 : 2 * prec * rec / (prec + rec);
      per.put(e.getKey(), new double[] {prec, rec, f1, c[3]});
      f1Sum += f1;
    }
    int n = Math.max(1, inst.size());
    return new Decisions(inst.size(), correct / (double) n, counts.isEmpty() ? 0 : f1Sum / counts.size(),
        per, mean(regret), percentile(regret, 95), mean(regretPct), percentile(regretPct, 95),
        misses == 0 ? 0 : missSum / misses);
  }


  /**
   * Decision instances over the full candidate set: one per workload, every (mover, mode) the
   * traces measured there ({@link Instance#mode()} is null). Complete workloads only.
   */
  public static List<Instance> fullInstances(List<TraceCsv.Row> rows) {
    Map<String, Map<String, TraceCsv.Row>> by = new LinkedHashMap<>();
    TreeSet<String> labels = new TreeSet<>();
    for (TraceCsv.Row r : rows) {
      labels.add(label(r));
      by.computeIfAbsent(r.workloadId(), k -> new LinkedHashMap<>()).put(label(r), r);
    }
    List<Instance> out = new ArrayList<>();
    for (var e : by.entrySet()) {
      if (e.getValue().size() == labels.size()) {
        out.add(new Instance(e.getKey(), null, new ArrayList<>(e.getValue().values())));
      }
    }
    return out;
  }

  /**
   * A single size threshold: candidate {@code below} (a {@link #label}) under
   * {@code thresholdBytes}, {@code above} from there on.
   */
  public record ThresholdRule(long thresholdBytes, String below, String above) {
    public Function<Instance, TraceCsv.Row> chooser() {
      return in -> {
        String want = in.rows().get(0).payloadBytes() < thresholdBytes ? below : above;
        for (TraceCsv.Row r : in.rows()) {
          if (label(r).equals(want)) {
            return r;
          }
        }
        return in.rows().get(0);
      };
    }

    @Override
    public String toString() {
      return below.equals(above) ? "always " + below
          : String.format(Locale.ROOT, "%s below %d B, else %s", below, thresholdBytes, above);
    }
  }

  /**
   * The best single-threshold rule for {@code train}: over every pair of candidates and every
   * threshold between two profiled sizes, the one with the lowest mean regret (% of the
   * oracle), ties to the lower total latency.
   */
  public static ThresholdRule fitRule(List<Instance> train) {
    TreeSet<String> labels = new TreeSet<>();
    TreeSet<Long> sizes = new TreeSet<>();
    for (Instance in : train) {
      in.rows().forEach(r -> labels.add(label(r)));
      sizes.add(in.rows().get(0).payloadBytes());
    }
    List<Long> cuts = new ArrayList<>();
    cuts.add(0L);
    Long prev = null;
    for (long sz : sizes) {
      if (prev != null) {
        cuts.add(prev + (sz - prev) / 2 + 1);
      }
      prev = sz;
    }
    ThresholdRule best = null;
    double bestRegret = Double.POSITIVE_INFINITY;
    double bestTotal = Double.POSITIVE_INFINITY;
    for (String lo : labels) {
      for (String hi : labels) {
        for (long cut : cuts) {
          if (cut == 0 && !lo.equals(hi)) {
            continue; // "always hi" is the pair (hi, hi)
          }
          ThresholdRule r = new ThresholdRule(cut, lo, hi);
          double[] rt = regretAndTotal(train, r.chooser());
          if (rt[0] < bestRegret - 1e-12
              || (Math.abs(rt[0] - bestRegret) <= 1e-12 && rt[1] < bestTotal)) {
            best = r;
            bestRegret = rt[0];
            bestTotal = rt[1];
          }
        }
      }
    }
    return best;
  }

  /** Mean regret (% of the oracle) and total chosen latency (µs). */
  static double[] regretAndTotal(List<Instance> inst, Function<Instance, TraceCsv.Row> c) {
    double regret = 0;
    double total = 0;
    for (Instance in : inst) {
      double chosen = c.apply(in).latencyUs();
      double best = in.oracle().latencyUs();
      regret += best > 0 ? (chosen - best) / best * 100 : 0;
      total += chosen;
    }
    return new double[] {inst.isEmpty() ? 0 : regret / inst.size(), total};
  }

  /** Total latency (µs) of the chooser's picks. */
  public static double totalLatency(List<Instance> inst, Function<Instance, TraceCsv.Row> c) {
    return regretAndTotal(inst, c)[1];
  }

  /**
   * A 95 % percentile interval of mean regret (% of oracle) of {@code a} minus {@code b}, from a
   * cluster bootstrap that resamples payload sizes (all instances of a size together: the
   * workloads of one size share its measurements' quirks, so they are not independent).
   *
   * @return {point estimate, low, high}
   */
  public static double[] bootstrapDifference(List<Instance> inst,
      Function<Instance, TraceCsv.Row> a, Function<Instance, TraceCsv.Row> b, int resamples,
      long seed) {
    Map<Long, double[]> bySize = new TreeMap<>(); // size -> {sum of differences, count}
    for (Instance in : inst) {
      double best = in.oracle().latencyUs();
      double ra = best > 0 ? (a.apply(in).latencyUs() - best) / best * 100 : 0;
      double rb = best > 0 ? (b.apply(in).latencyUs() - best) / best * 100 : 0;
      double[] c = bySize.computeIfAbsent(in.rows().get(0).payloadBytes(), k -> new double[2]);
      c[0] += ra - rb;
      c[1]++;
    }
    double[][] clusters = bySize.values().toArray(double[][]::new);
    double sum = 0;
    double n = 0;
    for (double[] c : clusters) {
      sum += c[0];
      n += c[1];
    }
    double point = n == 0 ? 0 : sum / n;
    if (clusters.length == 0) {
      return new double[] {0, 0, 0};
    }
    java.util.SplittableRandom rnd = new java.util.SplittableRandom(seed);
    double[] stats = new double[resamples];
    for (int r = 0; r < resamples; r++) {
      double s = 0;
      double k = 0;
      for (int i = 0; i < clusters.length; i++) {
        double[] c = clusters[rnd.nextInt(clusters.length)];
        s += c[0];
        k += c[1];
      }
      stats[r] = s / k;
    }
    Arrays.sort(stats);
    return new double[] {point, stats[(int) Math.floor(0.025 * (resamples - 1))],
        stats[(int) Math.ceil(0.975 * (resamples - 1))]};
  }

  /** Regression figures. */
  public record Regression(int rows, double rmseLog, double maeUs, double rmseUs, double r2) {}

  public static Regression regression(List<TraceCsv.Row> rows, ToDoubleFunction<TraceCsv.Row> predictLog) {
    double se = 0;
    double aeUs = 0;
    double seUs = 0;
    double mean = 0;
    for (TraceCsv.Row r : rows) {
      mean += r.latencyUs();
    }
    mean /= Math.max(1, rows.size());
    double ss = 0;
    for (TraceCsv.Row r : rows) {
      double p = predictLog.applyAsDouble(r);
      double y = Math.log1p(r.latencyUs());
      se += (p - y) * (p - y);
      double pu = Math.expm1(p);
      aeUs += Math.abs(pu - r.latencyUs());
      seUs += (pu - r.latencyUs()) * (pu - r.latencyUs());
      ss += (r.latencyUs() - mean) * (r.latencyUs() - mean);
    }
    int n = Math.max(1, rows.size());
    return new Regression(rows.size(), Math.sqrt(se / n), aeUs / n, Math.sqrt(seUs / n),
        ss == 0 ? 0 : 1 - seUs / ss);
  }

  /**
   * Argmin of the model's prediction (trees plus the mover's line, if any) over the model's
   * recorded lines.
   */
  public static Function<Instance, TraceCsv.Row> modelChooser(ModelArtifact model) {
    return modelChooser(model, Map.of());
  }

  /**
   * Argmin of the model's prediction as the engine deployed on each row's host makes it: scaled
   * by that run's calibrated lines ({@link #hostLines}; unscaled for a run without any).
   */
  public static Function<Instance, TraceCsv.Row> modelChooser(ModelArtifact model,
      Map<String, ModelArtifact.Baseline> hostLines) {
    double[] x = new double[Schema.WIDTH];
    return in -> {
      TraceCsv.Row best = null;
      double bestY = Double.POSITIVE_INFINITY;
      for (TraceCsv.Row r : in.rows()) {
        r.features(x);
        double y = model.predictLog(x, hostLines.getOrDefault(r.runId(),
            ModelArtifact.Baseline.NONE));
        if (y < bestY) {
          bestY = y;
          best = r;
        }
      }
      return best;
    };
  }

  /** Per run id, the usable calibrated lines the profiler recorded for it. */
  public static Map<String, ModelArtifact.Baseline> hostLines(List<TraceCsv.Row> rows) {
    Map<String, ModelArtifact.Baseline> out = new LinkedHashMap<>();
    TraceCsv.calibrations(rows).forEach((run, c) -> out.put(run, ModelArtifact.Baseline.of(c)));
    return out;
  }

  /** log(1 + predicted µs) of each row as {@link #modelChooser(ModelArtifact, Map)} has it. */
  public static ToDoubleFunction<TraceCsv.Row> deployedLog(ModelArtifact model,
      Map<String, ModelArtifact.Baseline> hostLines) {
    double[] x = new double[Schema.WIDTH];
    return r -> {
      r.features(x);
      return model.predictLog(x, hostLines.getOrDefault(r.runId(), ModelArtifact.Baseline.NONE));
    };
  }

  static double mean(double[] v) {
    return v.length == 0 ? 0 : Arrays.stream(v).average().orElse(0);
  }

  public static double percentile(double[] v, double p) {
    if (v.length == 0) {
      return 0;
    }
    double[] s = v.clone();
    Arrays.sort(s);
    int k = (int) Math.ceil(p / 100.0 * s.length) - 1;
    return s[Math.max(0, Math.min(s.length - 1, k))];
  }
}
