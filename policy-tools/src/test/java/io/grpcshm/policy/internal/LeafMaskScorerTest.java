package io.grpcshm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.policy.PolicyEngine;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The leaf-mask scorer gives the very bits of the tree walk it replaces. */
class LeafMaskScorerTest {
  static GbdtModel shipped() throws Exception {
    try (InputStream in = PolicyEngine.class.getResourceAsStream(
        PolicyEngine.DEFAULT_MODEL_RESOURCE)) {
      return ModelArtifact.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)).model();
    }
  }

  static GbdtModel[] specialisations(GbdtModel m) {
    GbdtModel[] s = new GbdtModel[6];
    for (int c = 0; c < 6; c++) {
      s[c] = m.specialize(Schema.CATEGORICAL, new double[] {c / 3, 0, c % 3});
    }
    return s;
  }

  static void assertSameBits(double expected, double actual, String what) {
    assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(actual),
        what + ": expected " + expected + ", got " + actual);
  }

  @Test
  void equalsTheTreeWalkOnTracesAtThresholdsAndAtRandom() throws Exception {
    GbdtModel m = shipped();
    GbdtModel[] spec = specialisations(m);
    LeafMaskScorer s = LeafMaskScorer.of(spec);
    assertNotNull(s, "the shipped model's specialisations qualify");
    List<double[]> queries = new ArrayList<>();
    for (TraceCsv.Row r : TraceCsv.read(Path.of("traces/heldout.csv"))) {
      double[] x = new double[Schema.WIDTH];
      r.features(x);
      queries.add(x);
    }
    // Every threshold of every feature, and its neighbours: x == threshold goes left.
    Random rnd = new Random(11);
    for (int n = 0; n < m.numNodes(); n++) {
      int f = m.feature[n];
      if (f > Schema.ACTIVE_STREAMS) {
        continue;
      }
      double t = m.threshold[n];
      for (double v : new double[] {t, Math.nextUp(t), Math.nextDown(t)}) {
        double[] x = queries.get(rnd.nextInt(queries.size())).clone();
        x[f] = v;
        queries.add(x);
      }
    }
    for (int i = 0; i < 5000; i++) {
      double[] x = {Math.exp(rnd.nextDouble() * 18), rnd.nextInt(4) - 1,
          rnd.nextDouble() * 60, 100 + rnd.nextDouble() * 400, rnd.nextInt(5), 0, 0, 0};
      queries.add(x);
    }
    double[] zero = {0, 0, 0, 0, 0, 0, 0, 0};
    queries.add(zero);
    queries.add(new double[] {-0.0, -0.0, -0.0, -0.0, -0.0, 0, 0, 0});
    int[] off = new int[Schema.WIDTH];
    double[] all = new double[6];
    double[] five = new double[6];
    for (double[] x : queries) {
      int used = s.rowOffsets(x, off);
      s.scoreAll(new int[] {0, 1, 2, 3, 4, 5}, off, used, all);
      s.scoreAll(new int[] {5, 4, 3, 2, 1}, off, used, five); // pairs and an odd one out
      for (int c = 0; c < 6; c++) {
        String at = "candidate " + c + " at " + java.util.Arrays.toString(x);
        double walk = spec[c].predict(x);
        assertSameBits(walk, s.score(c, off, used), at);
        assertSameBits(walk, all[c], "scoreAll, " + at);
        if (c > 0) {
          assertSameBits(walk, five[5 - c], "scoreAll of five, " + at);
        }
      }
    }
  }

  @Test
  void nanReadsAsZeroLikeLightGbmWithoutMissingValueHandling() throws Exception {
    GbdtModel[] spec = specialisations(shipped());
    LeafMaskScorer s = LeafMaskScorer.of(spec);
    double[] nan = {1 << 20, Double.NaN, Double.NaN, 200, 1, 0, 0, 0};
    for (int c = 0; c < 6; c++) {
      assertSameBits(spec[c].predict(nan), s.predict(c, nan), "candidate " + c);
    }
  }

  @Test
  void modelsItCannotScoreAreRefused() throws Exception {
    // Categorical splits (the unspecialised model) and missing-value handling are not plain.
    assertNull(LeafMaskScorer.of(shipped()));
    assertNull(LeafMaskScorer.of(GbdtModel.parse(GbdtModelTest.MODEL)));
    assertNull(LeafMaskScorer.of());
    // More than 32 leaves in a tree: a 40-leaf chain on feature 0.
    StringBuilder sf = new StringBuilder();
    StringBuilder th = new StringBuilder();
    StringBuilder dt = new StringBuilder();
    StringBuilder lc = new StringBuilder();
    StringBuilder rc = new StringBuilder();
    StringBuilder lv = new StringBuilder();
    int internal = 39;
    for (int k = 0; k < internal; k++) {
      sf.append(k == 0 ? "" : " ").append(0);
      th.append(k == 0 ? "" : " ").append(k);
      dt.append(k == 0 ? "" : " ").append(0);
      lc.append(k == 0 ? "" : " ").append(~k);
      rc.append(k == 0 ? "" : " ").append(k + 1 < internal ? k + 1 : ~internal);
    }
    for (int k = 0; k <= internal; k++) {
      lv.append(k == 0 ? "" : " ").append(k);
    }
    String chain = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
        + "max_feature_idx=0\nobjective=regression\nfeature_names=a\n\nTree=0\nnum_leaves=40\n"
        + "num_cat=0\nsplit_feature=" + sf + "\nthreshold=" + th + "\ndecision_type=" + dt
        + "\nleft_child=" + lc + "\nright_child=" + rc + "\nleaf_value=" + lv
        + "\nshrinkage=1\n\n\nend of trees\n";
    GbdtModel big = GbdtModel.parse(chain);
    assertEquals(39.0, big.predict(new double[] {100}));
    assertNull(LeafMaskScorer.of(big));
    assertTrue(big.plainNumerical());
  }
}
