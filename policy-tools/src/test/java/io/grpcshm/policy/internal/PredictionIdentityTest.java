package io.grpcshm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.microsoft.ml.lightgbm.PredictionType;
import io.github.metarank.lightgbm4j.LGBMBooster;
import io.github.metarank.lightgbm4j.LGBMDataset;
import io.grpcshm.policy.PolicyEngine;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The pure-Java evaluator against LightGBM's own predictions: bit-identical. */
class PredictionIdentityTest {
  static final Path HELD_OUT = Path.of("traces/heldout.csv");

  @Test
  void shippedModelMatchesLightGbmOnTheHeldOutTraces() throws Exception {
    String text;
    try (InputStream in = PolicyEngine.class.getResourceAsStream(
        PolicyEngine.DEFAULT_MODEL_RESOURCE)) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    ModelArtifact a = ModelArtifact.parse(text);
    List<TraceCsv.Row> rows = TraceCsv.read(HELD_OUT);
    assertTrue(rows.size() > 100, "held-out rows: " + rows.size());
    double[] m = new double[rows.size() * Schema.WIDTH];
    double[] x = new double[Schema.WIDTH];
    for (int i = 0; i < rows.size(); i++) {
      rows.get(i).features(x);
      System.arraycopy(x, 0, m, i * Schema.WIDTH, Schema.WIDTH);
    }
    double[] expected;
    try (LGBMBooster b = LGBMBooster.loadModelFromString(a.lightgbmText())) {
      expected = b.predictForMat(m, rows.size(), Schema.WIDTH, true,
          PredictionType.C_API_PREDICT_NORMAL);
    }
    // The leaf-mask scorer the runtime uses on a miss, over the six candidates' specialisations.
    GbdtModel[] spec6 = new GbdtModel[6];
    for (int c = 0; c < 6; c++) {
      spec6[c] = a.model().specialize(Schema.CATEGORICAL, new double[] {c / 3, 0, c % 3});
    }
    LeafMaskScorer scorer = LeafMaskScorer.of(spec6);
    assertTrue(scorer != null, "the shipped model must qualify for the leaf-mask scorer");
    for (int i = 0; i < rows.size(); i++) {
      rows.get(i).features(x);
      assertEquals(expected[i], a.model().predict(x), 0.0, "row " + i + " " + rows.get(i));
      int cand = (int) x[Schema.MOVER] * 3 + (int) x[Schema.MODE];
      assertEquals(Double.doubleToRawLongBits(expected[i]),
          Double.doubleToRawLongBits(scorer.predict(cand, x)), "leaf masks, row " + i);
      // The per-candidate specialisation the runtime uses gives the very same bits.
      GbdtModel spec = a.model().specialize(Schema.CATEGORICAL,
          new double[] {x[Schema.MOVER], x[Schema.CACHE_INJECTION], x[Schema.MODE]});
      assertEquals(expected[i], spec.predict(x), 0.0, "specialised, row " + i);
      assertTrue(spec.numNodes() < a.model().numNodes());
    }
  }

  @Test
  void freshModelWithMissingValuesAndCategoriesMatchesLightGbm() throws Exception {
    int n = 3000;
    int w = Schema.WIDTH;
    Random r = new Random(3);
    double[] data = new double[n * w];
    float[] label = new float[n];
    for (int i = 0; i < n; i++) {
      double size = Math.exp(r.nextDouble() * 16) * 1024;
      int mover = r.nextInt(2);
      int mode = r.nextInt(3);
      double pf = r.nextDouble() < 0.1 ? Double.NaN : r.nextDouble() * 50;
      double[] row = {size, r.nextInt(3) - 1, pf, 150 + r.nextDouble() * 200, 1 + r.nextInt(3),
          mover, 0, mode};
      System.arraycopy(row, 0, data, i * w, w);
      double us = (mover == 0 ? 1 + size / 3e3 : 20 + size / 6e3) * (mode == 1 ? 0.8 : 1)
          * (Double.isNaN(pf) ? 1.3 : 1 + pf / 100);
      label[i] = (float) Math.log1p(us * (0.9 + 0.2 * r.nextDouble()));
    }
    String params = "objective=regression num_leaves=15 learning_rate=0.2 min_data_in_leaf=5 "
        + "verbose=-1 num_threads=1 deterministic=true seed=1 categorical_feature=5,6,7";
    String text;
    double[] expected;
    // Query rows include NaNs everywhere, unseen and negative categories.
    double[] q = new double[400 * w];
    for (int i = 0; i < 400; i++) {
      for (int k = 0; k < w; k++) {
        q[i * w + k] = r.nextDouble() < 0.1 ? Double.NaN
            : k == 5 || k == 7 ? r.nextInt(5) - 1 : data[r.nextInt(n) * w + k];
      }
    }
    try (LGBMDataset ds = LGBMDataset.createFromMat(data, n, w, true, params, null)) {
      ds.setFeatureNames(Schema.FEATURES.toArray(String[]::new));
      ds.setField("label", label);
      try (LGBMBooster b = LGBMBooster.create(ds, params)) {
        for (int i = 0; i < 30; i++) {
          b.updateOneIter();
        }
        text = b.saveModelToString(0, 0, LGBMBooster.FeatureImportanceType.SPLIT);
        expected = b.predictForMat(q, 400, w, true, PredictionType.C_API_PREDICT_NORMAL);
      }
    }
    GbdtModel m = GbdtModel.parse(text);
    double[] x = new double[w];
    for (int i = 0; i < 400; i++) {
      System.arraycopy(q, i * w, x, 0, w);
      assertEquals(expected[i], m.predict(x), 0.0, "query " + i);
    }
  }
}
