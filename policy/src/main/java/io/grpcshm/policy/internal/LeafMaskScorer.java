package io.grpcshm.policy.internal;

import java.util.Arrays;
import java.util.TreeSet;

/**
 * Scores several specialised models (one per candidate) without walking trees: the bitvector
 * method of QuickScorer (Lucchese et al., SIGIR 2015), with the per-feature work precomputed.
 *
 * <p>The leaves of every tree are numbered left to right and a tree's state is a 32-bit mask of
 * the leaves still reachable. A node whose test is false ({@code x > threshold}: the walk goes
 * right) removes the leaves of its left subtree. The exit leaf — the one a walk reaches — is the
 * leftmost leaf that no false node removes, i.e. the lowest set bit of the AND of the masks of
 * all false nodes. Which nodes on a feature are false depends only on how many of that
 * feature's distinct thresholds lie below {@code x} (its <em>bin</em>), so at load time this
 * class stores, per feature, bin and tree, the AND of the masks of the nodes that bin makes
 * false. A prediction is then, per tree, one AND per used feature, a trailing-zero count and the
 * leaf value: no branches that depend on the data, no virtual calls, no allocation.
 *
 * <p>The leaf values are added in tree order starting from 0.0, exactly like
 * {@link GbdtModel#predict}, so the result has the same bits (LeafMaskScorerTest,
 * PredictionIdentityTest). Only models whose splits are all plain numerical (no categorical
 * split, no missing-value handling — what {@link GbdtModel#specialize} leaves of a model trained
 * on NaN-free traces) with at most 32 leaves per tree qualify; {@link #of} returns null
 * otherwise and callers keep walking the trees.
 */
public final class LeafMaskScorer {
  private static final int MAX_LEAVES = 32;

  private final int numTrees;
  /** Features with at least one split in some model, ascending. */
  private final int[] used;
  /** Per used feature: its distinct thresholds, ascending (-0.0 folded into 0.0). */
  private final double[][] cuts;
  /** Per used feature: index of its bin-0 row. */
  private final int[] rowBase;
  /** Per model: [row * numTrees + tree] = AND of the masks of the nodes that row makes false. */
  private final int[][] masks;
  /** Per model: [tree * 32 + leaf position from the left] = leaf value. */
  private final double[][] leaves;

  private LeafMaskScorer(int numTrees, int[] used, double[][] cuts, int[] rowBase, int[][] masks,
      double[][] leaves) {
    this.numTrees = numTrees;
    this.used = used;
    this.cuts = cuts;
    this.rowBase = rowBase;
    this.masks = masks;
    this.leaves = leaves;
  }

  /** A scorer for these models (same tree count), or null if one of them does not qualify. */
  public static LeafMaskScorer of(GbdtModel... models) {
    if (models.length == 0) {
      return null;
    }
    int width = models[0].numFeatures();
    int trees = models[0].numTrees();
    @SuppressWarnings("unchecked")
    TreeSet<Double>[] thresholds = new TreeSet[width];
    for (GbdtModel m : models) {
      if (!m.plainNumerical() || m.numTrees() != trees || m.numFeatures() != width) {
        return null;
      }
      for (int n = 0; n < m.numNodes(); n++) {
        double t = m.threshold[n];
        if (Double.isNaN(t)) {
          return null;
        }
        int f = m.feature[n];
        if (thresholds[f] == null) {
          thresholds[f] = new TreeSet<>();
        }
        thresholds[f].add(t == 0 ? 0.0 : t);
      }
    }
    int nUsed = 0;
    for (TreeSet<Double> s : thresholds) {
      nUsed += s == null ? 0 : 1;
    }
    int[] used = new int[nUsed];
    double[][] cuts = new double[nUsed][];
    int[] rowBase = new int[nUsed];
    int[] usedIndex = new int[width];
    Arrays.fill(usedIndex, -1);
    int rows = 0;
    for (int f = 0, u = 0; f < width; f++) {
      if (thresholds[f] != null) {
        used[u] = f;
        usedIndex[f] = u;
        cuts[u] = thresholds[f].stream().mapToDouble(Double::doubleValue).toArray();
        rowBase[u] = rows;
        rows += cuts[u].length + 1; // bins 0..k
        u++;
      }
    }
    int[][] masks = new int[models.length][];
    double[][] leaves = new double[models.length][];
    for (int c = 0; c < models.length; c++) {
      GbdtModel m = models[c];
      // Per node: the mask it applies when false, and the index of its threshold.
      int[] nodeMask = new int[m.numNodes()];
      int[] nodeTree = new int[m.numNodes()];
      double[] lv = new double[trees * MAX_LEAVES];
      for (int t = 0; t < trees; t++) {
        int[] next = {0};
        if (!number(m, m.root[t], t, next, nodeMask, nodeTree, lv)) {
          return null;
        }
      }
      int[] mk = new int[rows * trees];
      Arrays.fill(mk, -1);
      // Nodes of each used feature, by threshold index: bin b makes nodes with index < b false.
      for (int u = 0; u < nUsed; u++) {
        int k = cuts[u].length;
        for (int n = 0; n < m.numNodes(); n++) {
          if (m.feature[n] != used[u]) {
            continue;
          }
          double t = m.threshold[n] == 0 ? 0.0 : m.threshold[n];
          int j = Arrays.binarySearch(cuts[u], t);
          for (int b = j + 1; b <= k; b++) {
            mk[(rowBase[u] + b) * trees + nodeTree[n]] &= nodeMask[n];
          }
        }
      }
      masks[c] = mk;
      leaves[c] = lv;
    }
    return new LeafMaskScorer(trees, used, cuts, rowBase, masks, leaves);
  }

  /**
   * Numbers the leaves under {@code n} left to right from {@code next[0]}, records their
   * values, and each internal node's mask (all bits but its left subtree's leaves).
   */
  private static boolean number(GbdtModel m, int n, int tree, int[] next, int[] nodeMask,
      int[] nodeTree, double[] lv) {
    if (n < 0) {
      if (next[0] >= MAX_LEAVES) {
        return false;
      }
      lv[tree * MAX_LEAVES + next[0]++] = m.leafValue[~n];
      return true;
    }
    int first = next[0];
    if (!number(m, m.left[n], tree, next, nodeMask, nodeTree, lv)) {
      return false;
    }
    long leftBits = ((1L << (next[0] - first)) - 1) << first;
    nodeMask[n] = (int) ~leftBits;
    nodeTree[n] = tree;
    return number(m, m.right[n], tree, next, nodeMask, nodeTree, lv);
  }

  public int numModels() { return masks.length; }

  /** The features the models split on, ascending; {@link #rowOffset} takes an index into it. */
  public int[] usedFeatures() { return used.clone(); }

  /**
   * Where feature {@code used[u]} = {@code v} puts its row: an offset for {@link #score}. NaN is
   * read as 0.0, as LightGBM does for splits without missing-value handling.
   */
  public int rowOffset(int u, double v) {
    if (v != v) {
      v = 0.0;
    }
    double[] c = cuts[u];
    int lo = 0;
    int hi = c.length;
    while (lo < hi) { // number of thresholds strictly below v
      int mid = (lo + hi) >>> 1;
      if (c[mid] < v) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return (rowBase[u] + lo) * numTrees;
  }

  /** Fills {@code offsets} (one per used feature) for the feature vector {@code x}; returns their number. */
  public int rowOffsets(double[] x, int[] offsets) {
    for (int u = 0; u < used.length; u++) {
      offsets[u] = rowOffset(u, x[used[u]]);
    }
    return used.length;
  }

  /** The raw score of model {@code model} for the feature vector {@code x} (allocates). */
  public double predict(int model, double[] x) {
    int[] off = new int[used.length];
    return score(model, off, rowOffsets(x, off));
  }

  /**
   * Model {@code model}'s raw score. {@code offsets[0..used)} come from {@link #rowOffset}, one
   * per used feature in {@link #usedFeatures} order; {@code used} is their number.
   */
  public double score(int model, int[] offsets, int used) {
    int[] mk = masks[model];
    double[] lv = leaves[model];
    int nu = used;
    double sum = 0;
    for (int t = 0; t < numTrees; t++) {
      int bits = -1;
      for (int u = 0; u < nu; u++) {
        bits &= mk[offsets[u] + t];
      }
      sum += lv[(t << 5) + Integer.numberOfTrailingZeros(bits)];
    }
    return sum;
  }

  /**
   * Two models' raw scores in one pass over the trees (their two sums are independent chains,
   * so they overlap); written to {@code out[at]} and {@code out[at + 1]}. Same bits as two
   * {@link #score} calls.
   */
  public void score2(int a, int b, int[] offsets, int used, double[] out, int at) {
    int[] ma = masks[a];
    int[] mb = masks[b];
    double[] la = leaves[a];
    double[] lb = leaves[b];
    double sa = 0;
    double sb = 0;
    for (int t = 0; t < numTrees; t++) {
      int ba = -1;
      int bb = -1;
      for (int u = 0; u < used; u++) {
        int o = offsets[u] + t;
        ba &= ma[o];
        bb &= mb[o];
      }
      sa += la[(t << 5) + Integer.numberOfTrailingZeros(ba)];
      sb += lb[(t << 5) + Integer.numberOfTrailingZeros(bb)];
    }
    out[at] = sa;
    out[at + 1] = sb;
  }

  /**
   * Raw scores of {@code models[0..n)} into {@code out[0..n)}, two at a time (see
   * {@link #score2}).
   */
  public void scoreAll(int[] models, int[] offsets, int used, double[] out) {
    int n = models.length;
    int k = 0;
    for (; k + 1 < n; k += 2) {
      score2(models[k], models[k + 1], offsets, used, out, k);
    }
    if (k < n) {
      out[k] = score(models[k], offsets, used);
    }
  }

  /** Bytes held by the tables (for the docs and the status line). */
  public long footprintBytes() {
    long b = 0;
    for (int c = 0; c < masks.length; c++) {
      b += masks[c].length * 4L + leaves[c].length * 8L;
    }
    for (double[] c : cuts) {
      b += c.length * 8L;
    }
    return b;
  }
}
