package io.grpcshm.policy.internal;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A LightGBM regression model (text format, v4) compiled into flat arrays and evaluated in pure
 * Java: no native code, no allocation per prediction. Decisions replicate LightGBM's
 * {@code Tree::NumericalDecision} / {@code CategoricalDecision} exactly (including missing-value
 * handling), and trees are summed in file order, so predictions are bit-identical to
 * {@code LGBM_BoosterPredictForMat} on the same doubles (PredictionIdentityTest proves it).
 */
public final class GbdtModel {
  private static final int CATEGORICAL_MASK = 1;
  private static final int DEFAULT_LEFT_MASK = 2;
  private static final int MISSING_NONE = 0;
  private static final int MISSING_ZERO = 1;
  private static final int MISSING_NAN = 2;
  private static final double ZERO_THRESHOLD = 1e-35f;

  // One entry per internal node, all trees concatenated.
  final int[] feature;
  final double[] threshold;
  final byte[] decision;
  /** Child encoding: >= 0 internal node index; < 0 means leaf {@code ~child}. */
  final int[] left;
  final int[] right;
  /** Per internal categorical node: offset into {@link #catBits} and word count. */
  private final int[] catStart;
  private final int[] catWords;
  private final int[] catBits;
  final double[] leafValue;
  /** Root of each tree, same child encoding. */
  final int[] root;
  private final int numFeatures;
  private final List<String> featureNames;
  /** Every split numerical without missing-value handling: the tight loop applies. */
  private final boolean simple;

  /**
   * True when every split is numerical without missing-value handling (what a specialisation of
   * a model trained on NaN-free traces has): then a node goes left iff {@code x <= threshold},
   * with NaN read as 0.0.
   */
  boolean plainNumerical() { return simple; }

  private GbdtModel(int[] feature, double[] threshold, byte[] decision, int[] left, int[] right,
      int[] catStart, int[] catWords, int[] catBits, double[] leafValue, int[] root,
      int numFeatures, List<String> featureNames) {
    this.feature = feature;
    this.threshold = threshold;
    this.decision = decision;
    this.left = left;
    this.right = right;
    this.catStart = catStart;
    this.catWords = catWords;
    this.catBits = catBits;
    this.leafValue = leafValue;
    this.root = root;
    this.numFeatures = numFeatures;
    this.featureNames = featureNames;
    boolean all = true;
    for (byte d : decision) {
      all &= (d & ~DEFAULT_LEFT_MASK) == 0;
    }
    this.simple = all;
  }

  public int numTrees() { return root.length; }

  public int numNodes() { return feature.length; }

  public int numFeatures() { return numFeatures; }

  public List<String> featureNames() { return featureNames; }

  /** Per input feature, whether any split of any tree tests it. */
  public boolean[] usedFeatures() {
    boolean[] used = new boolean[numFeatures];
    for (int f : feature) {
      used[f] = true;
    }
    return used;
  }

  /** Raw score (for our regression: predicted log(1+latency_us)). Allocation-free. */
  public double predict(double[] x) {
    if (simple && noNaN(x)) {
      // Only plain numerical splits (e.g. a specialisation whose categorical configuration
      // splits were resolved) and no NaN to map to 0: one compare per level.
      double sum = 0;
      for (int t = 0; t < root.length; t++) {
        int n = root[t];
        while (n >= 0) {
          n = x[feature[n]] <= threshold[n] ? left[n] : right[n];
        }
        sum += leafValue[~n];
      }
      return sum;
    }
    double sum = 0;
    for (int t = 0; t < root.length; t++) {
      int n = root[t];
      while (n >= 0) {
        n = next(n, x[feature[n]]);
      }
      sum += leafValue[~n];
    }
    return sum;
  }

  private static boolean noNaN(double[] x) {
    for (double v : x) {
      if (v != v) {
        return false;
      }
    }
    return true;
  }

  private int next(int n, double fval) {
    int dt = decision[n];
    if ((dt & ~DEFAULT_LEFT_MASK) == 0 && fval == fval) {
      // Numerical, no missing-value handling, not NaN: the common case, one compare.
      return fval <= threshold[n] ? left[n] : right[n];
    }
    if ((dt & CATEGORICAL_MASK) != 0) {
      if (Double.isNaN(fval)) {
        return right[n];
      }
      int v = (int) fval;
      if (v < 0) {
        return right[n];
      }
      int word = v >>> 5;
      if (word >= catWords[n]) {
        return right[n];
      }
      return ((catBits[catStart[n] + word] >>> (v & 31)) & 1) != 0 ? left[n] : right[n];
    }
    int missing = (dt >> 2) & 3;
    if (Double.isNaN(fval) && missing != MISSING_NAN) {
      fval = 0.0;
    }
    if ((missing == MISSING_ZERO && Math.abs(fval) <= ZERO_THRESHOLD)
        || (missing == MISSING_NAN && Double.isNaN(fval))) {
      return (dt & DEFAULT_LEFT_MASK) != 0 ? left[n] : right[n];
    }
    return fval <= threshold[n] ? left[n] : right[n];
  }

  /**
   * Parses LightGBM's model text ({@code saveModelToString}). Rejects anything this evaluator
   * would get wrong: multiclass, linear trees, averaged (random-forest) output, objectives with
   * an output transform.
   */
  public static GbdtModel parse(String text) {
    String[] lines = text.split("\r?\n", -1);
    int i = 0;
    while (i < lines.length && lines[i].isBlank()) {
      i++;
    }
    if (i >= lines.length || !lines[i].trim().equals("tree")) {
      throw new ModelFormatException("not a LightGBM text model: first line is not 'tree'");
    }
    Map<String, String> header = new HashMap<>();
    for (i++; i < lines.length && !lines[i].startsWith("Tree="); i++) {
      if (lines[i].startsWith("end of trees")) {
        break;
      }
      kv(lines[i], header);
    }
    String version = header.getOrDefault("version", "?");
    if (!version.equals("v4")) {
      throw new ModelFormatException("LightGBM model version " + version + " (expected v4)");
    }
    if (!"1".equals(header.get("num_class")) || !"1".equals(header.get("num_tree_per_iteration"))) {
      throw new ModelFormatException("multiclass models are not supported (num_class="
          + header.get("num_class") + ")");
    }
    String objective = header.getOrDefault("objective", "");
    if (!objective.startsWith("regression") || objective.contains("sqrt")) {
      throw new ModelFormatException("objective '" + objective
          + "' is not plain regression (raw score = prediction is required)");
    }
    if (header.containsKey("average_output")) {
      throw new ModelFormatException("averaged (random forest) models are not supported");
    }
    int maxFeature = intField(header, "max_feature_idx", "header");
    List<String> names = List.of(header.getOrDefault("feature_names", "").split(" "));

    List<int[]> feats = new ArrayList<>();
    List<double[]> thresholds = new ArrayList<>();
    List<int[]> decisions = new ArrayList<>();
    List<int[]> lefts = new ArrayList<>();
    List<int[]> rights = new ArrayList<>();
    List<double[]> leaves = new ArrayList<>();
    List<int[]> catBoundaries = new ArrayList<>();
    List<int[]> catThresholds = new ArrayList<>();
    int nodes = 0;
    int leafCount = 0;
    int catTotal = 0;
    while (i < lines.length && lines[i].startsWith("Tree=")) {
      String treeId = lines[i].trim();
      Map<String, String> t = new HashMap<>();
      for (i++; i < lines.length && !lines[i].isBlank(); i++) {
        kv(lines[i], t);
      }
      while (i < lines.length && lines[i].isBlank()) {
        i++;
      }
      int numLeaves = intField(t, "num_leaves", treeId);
      if ("1".equals(t.get("is_linear"))) {
        throw new ModelFormatException(treeId + ": linear trees are not supported");
      }
      double[] leaf = doubles(t, "leaf_value", numLeaves, treeId);
      int internal = numLeaves - 1;
      int[] sf = internal == 0 ? new int[0] : ints(t, "split_feature", internal, treeId);
      double[] th = internal == 0 ? new double[0] : doubles(t, "threshold", internal, treeId);
      int[] dt = internal == 0 ? new int[0] : ints(t, "decision_type", internal, treeId);
      int[] lc = internal == 0 ? new int[0] : ints(t, "left_child", internal, treeId);
      int[] rc = internal == 0 ? new int[0] : ints(t, "right_child", internal, treeId);
      int numCat = t.containsKey("num_cat") ? intField(t, "num_cat", treeId) : 0;
      int[] cb = new int[] {0};
      int[] ct = new int[0];
      if (numCat > 0) {
        cb = ints(t, "cat_boundaries", numCat + 1, treeId);
        ct = ints(t, "cat_threshold", cb[numCat], treeId);
      }
      for (int k = 0; k < internal; k++) {
        if (sf[k] < 0 || sf[k] > maxFeature) {
          throw new ModelFormatException(treeId + ": split_feature " + sf[k] + " out of range");
        }
        for (int c : new int[] {lc[k], rc[k]}) {
          if (c >= internal || ~c >= numLeaves) {
            throw new ModelFormatException(treeId + ": child " + c + " out of range");
          }
        }
        if ((dt[k] & CATEGORICAL_MASK) != 0 && ((int) th[k] < 0 || (int) th[k] >= numCat)) {
          throw new ModelFormatException(treeId + ": categorical split index out of range");
        }
      }
      feats.add(sf);
      thresholds.add(th);
      decisions.add(dt);
      lefts.add(lc);
      rights.add(rc);
      leaves.add(leaf);
      catBoundaries.add(cb);
      catThresholds.add(ct);
      nodes += internal;
      leafCount += numLeaves;
      catTotal += ct.length;
    }
    if (feats.isEmpty()) {
      throw new ModelFormatException("model has no trees");
    }
    if (i >= lines.length || !lines[i].startsWith("end of trees")) {
      throw new ModelFormatException("truncated model: no 'end of trees' after tree "
          + (feats.size() - 1));
    }
    int[] feature = new int[nodes];
    double[] threshold = new double[nodes];
    byte[] decision = new byte[nodes];
    int[] left = new int[nodes];
    int[] right = new int[nodes];
    int[] catStart = new int[nodes];
    int[] catWords = new int[nodes];
    int[] catBits = new int[catTotal];
    double[] leafValue = new double[leafCount];
    int[] root = new int[feats.size()];
    int nodeBase = 0;
    int leafBase = 0;
    int catBase = 0;
    for (int t = 0; t < feats.size(); t++) {
      int[] sf = feats.get(t);
      int[] cb = catBoundaries.get(t);
      int[] ct = catThresholds.get(t);
      double[] leaf = leaves.get(t);
      System.arraycopy(leaf, 0, leafValue, leafBase, leaf.length);
      System.arraycopy(ct, 0, catBits, catBase, ct.length);
      for (int k = 0; k < sf.length; k++) {
        int g = nodeBase + k;
        feature[g] = sf[k];
        threshold[g] = thresholds.get(t)[k];
        decision[g] = (byte) decisions.get(t)[k];
        left[g] = relocate(lefts.get(t)[k], nodeBase, leafBase);
        right[g] = relocate(rights.get(t)[k], nodeBase, leafBase);
        if ((decision[g] & CATEGORICAL_MASK) != 0) {
          int c = (int) threshold[g];
          catStart[g] = catBase + cb[c];
          catWords[g] = cb[c + 1] - cb[c];
        }
      }
      root[t] = sf.length == 0 ? ~leafBase : nodeBase;
      nodeBase += sf.length;
      leafBase += leaf.length;
      catBase += ct.length;
    }
    return new GbdtModel(feature, threshold, decision, left, right, catStart, catWords, catBits,
        leafValue, root, maxFeature + 1, names);
  }

  /**
   * A copy of this model with some features fixed (the candidate's configuration): splits on
   * them are resolved now, so each tree keeps only the splits on the call's context. Trees that
   * become a single leaf stay in place as a leaf root, so the summation order — and therefore
   * every prediction — is bit-identical to {@link #predict} with those features set.
   */
  public GbdtModel specialize(int[] features, double[] values) {
    double[] probe = new double[numFeatures];
    boolean[] fixed = new boolean[numFeatures];
    for (int k = 0; k < features.length; k++) {
      fixed[features[k]] = true;
      probe[features[k]] = values[k];
    }
    IntList f = new IntList();
    List<Double> th = new ArrayList<>();
    IntList dt = new IntList();
    IntList l = new IntList();
    IntList r = new IntList();
    IntList cs = new IntList();
    IntList cw = new IntList();
    int[] newRoot = new int[root.length];
    for (int t = 0; t < root.length; t++) {
      newRoot[t] = copy(root[t], fixed, probe, f, th, dt, l, r, cs, cw);
    }
    double[] thr = new double[th.size()];
    byte[] dec = new byte[dt.size];
    for (int k = 0; k < thr.length; k++) {
      thr[k] = th.get(k);
      dec[k] = (byte) dt.a[k];
    }
    return new GbdtModel(f.toArray(), thr, dec, l.toArray(), r.toArray(), cs.toArray(),
        cw.toArray(), catBits, leafValue, newRoot, numFeatures, featureNames);
  }

  private int copy(int n, boolean[] fixed, double[] probe, IntList f, List<Double> th, IntList dt,
      IntList l, IntList r, IntList cs, IntList cw) {
    while (n >= 0 && fixed[feature[n]]) {
      n = next(n, probe[feature[n]]);
    }
    if (n < 0) {
      return n; // leaf indexes are kept: leafValue is shared
    }
    int me = f.size;
    f.add(feature[n]);
    th.add(threshold[n]);
    dt.add(decision[n]);
    cs.add(catStart[n]);
    cw.add(catWords[n]);
    l.add(0);
    r.add(0);
    int lc = copy(left[n], fixed, probe, f, th, dt, l, r, cs, cw);
    int rc = copy(right[n], fixed, probe, f, th, dt, l, r, cs, cw);
    l.a[me] = lc;
    r.a[me] = rc;
    return me;
  }

  private static final class IntList {
    int[] a = new int[64];
    int size;

    void add(int v) {
      if (size == a.length) {
        a = java.util.Arrays.copyOf(a, size * 2);
      }
      a[size++] = v;
    }

    int[] toArray() {
      return java.util.Arrays.copyOf(a, size);
    }
  }

  private static double number(String s) {
    return switch (s) {
      case "inf", "+inf", "infinity" -> Double.POSITIVE_INFINITY;
      case "-inf", "-infinity" -> Double.NEGATIVE_INFINITY;
      case "nan", "-nan" -> Double.NaN;
      default -> Double.parseDouble(s);
    };
  }

  private static int relocate(int child, int nodeBase, int leafBase) {
    return child >= 0 ? nodeBase + child : ~(leafBase + ~child);
  }

  private static void kv(String line, Map<String, String> into) {
    int eq = line.indexOf('=');
    if (eq > 0) {
      into.put(line.substring(0, eq).trim(), line.substring(eq + 1).trim());
    }
  }

  private static int intField(Map<String, String> m, String key, String where) {
    String v = m.get(key);
    if (v == null) {
      throw new ModelFormatException(where + ": missing " + key);
    }
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new ModelFormatException(where + ": " + key + " is not an integer: " + v);
    }
  }

  private static String[] tokens(Map<String, String> m, String key, int n, String where) {
    String v = m.get(key);
    if (v == null) {
      throw new ModelFormatException(where + ": missing " + key);
    }
    String[] parts = v.isEmpty() ? new String[0] : v.split(" ");
    if (parts.length != n) {
      throw new ModelFormatException(where + ": " + key + " has " + parts.length
          + " values, expected " + n);
    }
    return parts;
  }

  private static int[] ints(Map<String, String> m, String key, int n, String where) {
    String[] p = tokens(m, key, n, where);
    int[] out = new int[n];
    try {
      for (int k = 0; k < n; k++) {
        out[k] = Integer.parseInt(p[k]);
      }
    } catch (NumberFormatException e) {
      throw new ModelFormatException(where + ": bad integer in " + key + ": " + e.getMessage());
    }
    return out;
  }

  private static double[] doubles(Map<String, String> m, String key, int n, String where) {
    String[] p = tokens(m, key, n, where);
    double[] out = new double[n];
    try {
      for (int k = 0; k < n; k++) {
        out[k] = number(p[k]);
      }
    } catch (NumberFormatException e) {
      throw new ModelFormatException(where + ": bad number in " + key + ": " + e.getMessage());
    }
    return out;
  }
}
