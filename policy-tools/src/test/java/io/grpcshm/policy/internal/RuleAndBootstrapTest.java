package io.grpcshm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** The best single-threshold rule and the cluster bootstrap of a regret difference. */
class RuleAndBootstrapTest {
  /** CPU wins below 1 MiB (by 10 %), SOFTWARE from there on (by 20 %), three workloads a size. */
  private static List<TraceCsv.Row> rows() {
    List<TraceCsv.Row> rows = new ArrayList<>();
    long[] sizes = {4096, 65536, 262144, 1 << 20, 4 << 20, 16 << 20};
    for (long s : sizes) {
      for (int w = 0; w < 3; w++) {
        String id = "s" + s + "-w" + w;
        double base = s / 1000.0 + w;
        boolean large = s >= 1 << 20;
        rows.add(row(id, s, MoverKind.CPU, large ? base * 1.2 : base));
        rows.add(row(id, s, MoverKind.SOFTWARE, large ? base : base * 1.1));
      }
    }
    return rows;
  }

  private static TraceCsv.Row row(String id, long size, MoverKind m, double us) {
    return new TraceCsv.Row("t", id, size, -1, 0, 0, 1, m, false, Mode.ASYNC, us, 0, 1, false,
        "procstat", "proxy");
  }

  @Test
  void fitsTheThresholdBetweenTheProfiledSizes() {
    List<Evaluation.Instance> inst = Evaluation.instances(rows());
    Evaluation.ThresholdRule r = Evaluation.fitRule(inst);
    assertEquals("async_cpu", r.below());
    assertEquals("async_software", r.above());
    assertTrue(r.thresholdBytes() > 262144 && r.thresholdBytes() <= 1 << 20, r.toString());
    assertEquals(1.0, Evaluation.decisions(inst, r.chooser()).accuracy(), 0);
  }

  @Test
  void bootstrapIntervalIsZeroForTheSameChooserAndExcludesZeroForAWorseOne() {
    List<Evaluation.Instance> inst = Evaluation.instances(rows());
    Function<Evaluation.Instance, TraceCsv.Row> oracle = Evaluation.Instance::oracle;
    double[] same = Evaluation.bootstrapDifference(inst, oracle, oracle, 500, 1);
    assertEquals(0, same[0], 0);
    assertEquals(0, same[1], 0);
    assertEquals(0, same[2], 0);
    Function<Evaluation.Instance, TraceCsv.Row> cpu = in -> in.rows().stream()
        .filter(r -> r.mover() == MoverKind.CPU).findFirst().orElseThrow();
    double[] worse = Evaluation.bootstrapDifference(inst, cpu, oracle, 500, 1);
    assertEquals(10, worse[0], 1e-9, "half the instances lose 20 %");
    assertTrue(worse[1] > 0 && worse[2] >= worse[0], java.util.Arrays.toString(worse));
  }
}
