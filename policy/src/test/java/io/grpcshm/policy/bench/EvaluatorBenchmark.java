package io.grpcshm.policy.bench;

import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.internal.GbdtModel;
import io.grpcshm.policy.internal.LeafMaskScorer;
import io.grpcshm.policy.internal.ModelArtifact;
import io.grpcshm.policy.internal.Schema;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The shipped model scored for all six candidates: generic tree walk, per-candidate specialised
 * tree walk, and the leaf-mask tables the engine uses on a miss (row lookups included).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class EvaluatorBenchmark {
  GbdtModel model;
  GbdtModel[] spec = new GbdtModel[6];
  LeafMaskScorer masks;
  int[] offsets = new int[Schema.WIDTH];
  double[] y = new double[6];
  int[] all = {0, 1, 2, 3, 4, 5};
  double[] x = {3 << 20, 0, 2.0, 210, 1, 0, 0, 0};
  int i;

  @Setup
  public void setup() throws Exception {
    try (InputStream in = PolicyEngine.class.getResourceAsStream(
        PolicyEngine.DEFAULT_MODEL_RESOURCE)) {
      model = ModelArtifact.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)).model();
    }
    for (int c = 0; c < 6; c++) {
      spec[c] = model.specialize(Schema.CATEGORICAL, new double[] {c / 3, 0, c % 3});
    }
    masks = LeafMaskScorer.of(spec);
  }

  private void vary() {
    x[Schema.PAYLOAD_BYTES] = 4096L << (i++ & 15);
  }

  @Benchmark
  public double generic() {
    vary();
    double s = 0;
    for (int c = 0; c < 6; c++) {
      x[Schema.MOVER] = c / 3;
      x[Schema.MODE] = c % 3;
      s += model.predict(x);
    }
    return s;
  }

  @Benchmark
  public double specialised() {
    vary();
    double s = 0;
    for (int c = 0; c < 6; c++) {
      s += spec[c].predict(x);
    }
    return s;
  }

  @Benchmark
  public double leafMasks() {
    vary();
    int used = masks.rowOffsets(x, offsets); // binary search; the engine looks rows up per bucket
    masks.scoreAll(all, offsets, used, y);
    double s = 0;
    for (int c = 0; c < 6; c++) {
      s += y[c];
    }
    return s;
  }
}
