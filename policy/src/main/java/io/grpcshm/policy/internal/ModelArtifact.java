package io.grpcshm.policy.internal;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The policy model file: a few {@code policy.*} header lines that say what the model was trained
 * on (schema, signal sources, candidates, provenance), a {@code ---} line, then LightGBM's own
 * model text unchanged (so LightGBM can load the tail, which the identity test does).
 *
 * <p>With a {@code policy.baseline} line the trees predict the residual over each mover's
 * calibrated line on the profiled host, in log space: log(1 + latency) = log(1 + L_fixed +
 * α·size) + trees. Beyond the profiled sizes the trees' last leaves hold, so the prediction
 * grows with α instead of stopping at the largest size seen. Deployed on another host, the lines
 * are scaled by that host's calibrated speed relative to the recorded lines ({@link #baseLog}).
 * Without it (older models) the trees predict log(1 + latency) directly.
 *
 * <p>With a {@code policy.residual_size_cap} line (bytes) the trees see the payload size capped
 * there ({@link #treeSize}): the residual is then estimated from every profiled size above the
 * cap together, so the one largest size band, a few noisy workloads, does not set every
 * prediction beyond the data, and above the cap only the line depends on the size.
 */
public record ModelArtifact(Map<String, String> meta, String lightgbmText, GbdtModel model,
    Baseline baseline, double residualSizeCap) {
  /** The meta key (without {@code policy.}) of the residual's size cap, in bytes. */
  public static final String SIZE_CAP_KEY = "residual_size_cap";
  public static final String MAGIC = "# grpc-shm policy model";
  public static final String SEPARATOR = "---";

  public static String write(Map<String, String> meta, String lightgbmText) {
    StringBuilder b = new StringBuilder(MAGIC).append('\n');
    b.append("policy.format=").append(Schema.FORMAT).append('\n');
    b.append("policy.features=").append(String.join(",", Schema.FEATURES)).append('\n');
    meta.forEach((k, v) -> b.append("policy.").append(k).append('=')
        .append(v.replace('\n', ' ')).append('\n'));
    return b.append(SEPARATOR).append('\n').append(lightgbmText).toString();
  }

  /** Parses and validates; every failure names the problem. */
  public static ModelArtifact parse(String text) {
    if (text == null || text.isEmpty()) {
      throw new ModelFormatException("model file is empty");
    }
    if (!text.startsWith(MAGIC)) {
      throw new ModelFormatException("not a policy model: first line is not '" + MAGIC + "'");
    }
    int sep = text.indexOf("\n" + SEPARATOR + "\n");
    if (sep < 0) {
      throw new ModelFormatException("corrupt policy model: no '---' line before the trees");
    }
    Map<String, String> meta = new LinkedHashMap<>();
    for (String line : text.substring(0, sep).split("\n")) {
      if (line.startsWith("policy.")) {
        int eq = line.indexOf('=');
        if (eq < 0) {
          throw new ModelFormatException("corrupt header line: " + line);
        }
        meta.put(line.substring(7, eq), line.substring(eq + 1));
      }
    }
    String format = meta.get("format");
    if (!String.valueOf(Schema.FORMAT).equals(format)) {
      throw new ModelFormatException("incompatible model: format " + format + ", this runtime reads "
          + Schema.FORMAT);
    }
    String features = meta.getOrDefault("features", "");
    if (!features.equals(String.join(",", Schema.FEATURES))) {
      throw new ModelFormatException("incompatible model: features [" + features
          + "], this runtime uses " + Schema.FEATURES);
    }
    String lgbm = text.substring(sep + SEPARATOR.length() + 2);
    GbdtModel model = GbdtModel.parse(lgbm);
    if (model.numFeatures() != Schema.WIDTH) {
      throw new ModelFormatException("incompatible model: " + model.numFeatures()
          + " input features, expected " + Schema.WIDTH);
    }
    List<String> names = model.featureNames();
    if (!names.equals(Schema.FEATURES)) {
      throw new ModelFormatException("incompatible model: tree feature_names " + names
          + " differ from " + Schema.FEATURES);
    }
    Baseline base = meta.containsKey("baseline") ? Baseline.parse(meta.get("baseline"))
        : Baseline.NONE;
    double cap = Double.POSITIVE_INFINITY;
    if (meta.containsKey(SIZE_CAP_KEY)) {
      if (!meta.containsKey("baseline")) {
        throw new ModelFormatException("policy." + SIZE_CAP_KEY + " without policy.baseline: "
            + "nothing would carry the size beyond the cap");
      }
      try {
        cap = Long.parseLong(meta.get(SIZE_CAP_KEY).trim());
      } catch (NumberFormatException e) {
        throw new ModelFormatException("policy." + SIZE_CAP_KEY + ": not a byte count '"
            + meta.get(SIZE_CAP_KEY) + "'");
      }
      if (!(cap >= 1)) {
        throw new ModelFormatException("policy." + SIZE_CAP_KEY + ": must be positive, is "
            + meta.get(SIZE_CAP_KEY));
      }
    }
    return new ModelArtifact(Map.copyOf(meta), lgbm, model, base, cap);
  }

  /** The payload size the trees see for a message of {@code bytes}. */
  public double treeSize(double bytes) {
    return Math.min(bytes, residualSizeCap);
  }

  /**
   * The trees' raw score (the residual, or log(1 + latency) without a baseline) of the full
   * feature vector {@code x}, with the payload size capped as in training.
   */
  public double predictTrees(double[] x) {
    double size = x[Schema.PAYLOAD_BYTES];
    x[Schema.PAYLOAD_BYTES] = treeSize(size);
    try {
      return model.predict(x);
    } finally {
      x[Schema.PAYLOAD_BYTES] = size;
    }
  }

  /**
   * Predicted log(1 + latency µs) of the full feature vector {@code x} (Schema layout), over the
   * model's recorded lines.
   */
  public double predictLog(double[] x) {
    return predictLog(x, Baseline.NONE);
  }

  /**
   * Predicted log(1 + latency µs) of {@code x} on a host whose movers have the calibrated lines
   * {@code host} ({@link #baseLog}; {@link Baseline#NONE}: the profiled host's).
   */
  public double predictLog(double[] x, Baseline host) {
    return predictTrees(x) + baseLog(host, (int) x[Schema.MOVER], x[Schema.PAYLOAD_BYTES]);
  }

  /**
   * log(1 + line µs) that the trees' residual is added to, for {@code mover} (ordinal) at
   * {@code bytes}: the model's recorded line, scaled by this host's speed relative to the
   * profiled host's ({@link #hostScaleLog}). The movers' relative costs stay the recorded lines':
   * the residuals were fitted against them, and one mover's line swapped for this host's would
   * shift its residual alone (a line recorded as a rejected calibration's defaults, or a noisy
   * fixed cost, would then decide the choice).
   */
  public double baseLog(Baseline host, int mover, double bytes) {
    if (!baseline.has(mover)) {
      return baseline.log1p(mover, bytes);
    }
    return baseline.log1p(mover, bytes) + hostScaleLog(host, bytes);
  }

  /**
   * log of this host's copy cost relative to the profiled host's at {@code bytes}: the mean, over
   * the movers with a measured recorded line ({@link Baseline#measured}) and a line on this host,
   * of log(1 + host line) − log(1 + recorded line); 0 when there is no such mover.
   */
  public double hostScaleLog(Baseline host, double bytes) {
    double sum = 0;
    int n = 0;
    for (int m = 0; m < baseline.fixedUs().length; m++) {
      if (baseline.measured(m) && host.has(m)) {
        sum += host.log1p(m, bytes) - baseline.log1p(m, bytes);
        n++;
      }
    }
    return n == 0 ? 0 : sum / n;
  }

  /**
   * Per mover (by {@link io.grpcshm.dsa.MoverKind} ordinal) the calibrated line the trees
   * correct: µs fixed and µs per MiB. A mover without a line has offset 0.
   */
  public record Baseline(double[] fixedUs, double[] usPerMib) {
    public static final Baseline NONE = new Baseline(new double[0], new double[0]);

    /** {@code cpu:2.000+52.4288,software:191.6+96.0} (µs + µs/MiB per mover). */
    public static Baseline parse(String text) {
      int n = io.grpcshm.dsa.MoverKind.values().length;
      double[] f = new double[n];
      double[] a = new double[n];
      java.util.Arrays.fill(f, Double.NaN);
      java.util.Arrays.fill(a, Double.NaN);
      for (String part : text.split(",")) {
        String t = part.trim();
        int colon = t.indexOf(':');
        int plus = t.indexOf('+', colon + 1);
        if (colon < 0 || plus < 0) {
          throw new ModelFormatException("corrupt policy.baseline entry '" + t
              + "' (expected mover:fixed_us+us_per_mib)");
        }
        io.grpcshm.dsa.MoverKind k;
        try {
          k = io.grpcshm.dsa.MoverKind.valueOf(t.substring(0, colon).toUpperCase(
              java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
          throw new ModelFormatException("policy.baseline: unknown mover '"
              + t.substring(0, colon) + "'");
        }
        double fixed;
        double slope;
        try {
          fixed = Double.parseDouble(t.substring(colon + 1, plus));
          slope = Double.parseDouble(t.substring(plus + 1));
        } catch (NumberFormatException e) {
          throw new ModelFormatException("policy.baseline: not a number in '" + t + "'");
        }
        if (!(fixed >= 0 && fixed < 1e9) || !(slope > 0 && slope < 1e9)) {
          throw new ModelFormatException("policy.baseline: implausible line '" + t + "'");
        }
        f[k.ordinal()] = fixed;
        a[k.ordinal()] = slope;
      }
      return new Baseline(f, a);
    }

    public static String format(Map<io.grpcshm.dsa.MoverKind, double[]> lines) {
      StringBuilder b = new StringBuilder();
      lines.forEach((k, v) -> b.append(b.isEmpty() ? "" : ",")
          .append(k.name().toLowerCase(java.util.Locale.ROOT)).append(':')
          .append(String.format(java.util.Locale.ROOT, "%.3f+%.4f", v[0], v[1])));
      return b.toString();
    }

    /**
     * The lines of the usable calibrations in {@code calibrations} ({@link #unusable}); the
     * others are left out (NaN).
     */
    public static Baseline of(Map<io.grpcshm.dsa.MoverKind, io.grpcshm.dsa.Calibration>
        calibrations) {
      int n = io.grpcshm.dsa.MoverKind.values().length;
      double[] f = new double[n];
      double[] a = new double[n];
      java.util.Arrays.fill(f, Double.NaN);
      java.util.Arrays.fill(a, Double.NaN);
      calibrations.forEach((k, c) -> {
        if (unusable(c) == null) {
          f[k.ordinal()] = c.fixedNanos() / 1000.0;
          a[k.ordinal()] = c.microsPerMiB();
        }
      });
      return new Baseline(f, a);
    }

    /**
     * Why {@code c} cannot stand in for a mover's line, or null when it can: it must have been
     * measured (not the defaults of a rejected calibration) and be as plausible as a recorded
     * line.
     */
    public static String unusable(io.grpcshm.dsa.Calibration c) {
      if (c == null) {
        return "no calibration";
      }
      if (!c.measured()) {
        return c.note().isEmpty() ? "not calibrated" : c.note();
      }
      double fixed = c.fixedNanos() / 1000.0;
      double slope = c.microsPerMiB();
      if (!(fixed >= 0 && fixed < 1e9) || !(slope > 0 && slope < 1e9)) {
        return "implausible line " + c;
      }
      return null;
    }

    /**
     * True when {@code mover} (ordinal) has a line that was measured: not the defaults a
     * calibration falls back to when every measurement was rejected ({@code
     * Calibration.fallback}), which say nothing about the profiled host.
     */
    public boolean measured(int mover) {
      if (!has(mover)) {
        return false;
      }
      io.grpcshm.dsa.Calibration d = io.grpcshm.dsa.Calibration.fallback("");
      return !(Math.round(fixedUs[mover] * 1000) == d.fixedNanos()
          && Math.abs(usPerMib[mover] - d.microsPerMiB()) < 1e-3);
    }

    /** True when {@code mover} (ordinal) has a line. */
    public boolean has(int mover) {
      return mover < fixedUs.length && !Double.isNaN(fixedUs[mover]);
    }

    /** log(1 + baseline µs) of {@code mover} (ordinal) at {@code bytes}; 0 without a line. */
    public double log1p(int mover, double bytes) {
      if (!has(mover)) {
        return 0;
      }
      return Math.log1p(fixedUs[mover] + usPerMib[mover] * bytes / (1 << 20));
    }
  }

  public String meta(String key) {
    return meta.getOrDefault(key, "");
  }

  @Override
  public String toString() {
    return "ModelArtifact" + Arrays.toString(new Object[] {meta.get("trained"), model.numTrees()});
  }
}
