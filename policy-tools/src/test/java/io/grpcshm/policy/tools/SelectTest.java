package io.grpcshm.policy.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.policy.internal.TraceCsv;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class SelectTest {
  @Test
  void foldsSplitByWorkloadAndTimeBlocksCoverEachWorkloadOnce() throws Exception {
    List<TraceCsv.Row> all = TraceCsv.read(Path.of("traces/train-r5.csv"));
    List<Select.Fold> folds = Select.folds(all, 4, 0.2, 5);
    assertEquals(9, folds.size());
    Map<String, Integer> heldOutInBlocks = new HashMap<>();
    for (Select.Fold f : folds) {
      assertEquals(all.size(), f.train().size() + f.test().size(), f.name());
      Set<String> train = new HashSet<>();
      f.train().forEach(r -> train.add(r.workloadId()));
      f.test().forEach(r -> assertTrue(!train.contains(r.workloadId()),
          f.name() + ": " + r.workloadId() + " on both sides"));
      assertTrue(!f.test().isEmpty() && !f.train().isEmpty(), f.name());
      if (f.name().startsWith("time")) {
        f.test().stream().map(TraceCsv.Row::workloadId).distinct()
            .forEach(w -> heldOutInBlocks.merge(w, 1, Integer::sum));
      }
    }
    long workloads = all.stream().map(TraceCsv.Row::workloadId).distinct().count();
    assertEquals(workloads, heldOutInBlocks.size());
    assertTrue(heldOutInBlocks.values().stream().allMatch(n -> n == 1));
    // The first time block is the first fifth of the workloads in file (= measurement) order.
    String first = all.get(0).workloadId();
    assertTrue(folds.get(4).test().stream().anyMatch(r -> r.workloadId().equals(first)));
  }

  @Test
  void settingsParseWithDefaultsAndRejectUnknownKeys() {
    Select.Setting s = Select.Setting.parse(
        "x:leaves=15 drop=pf_rate,llc_pressure params=lambda_l2=1 monotone_constraints=1,0,0,0,0,0,0,0");
    assertEquals("x", s.name());
    assertEquals(30, s.trees());
    assertEquals(15, s.leaves());
    assertEquals(List.of("pf_rate", "llc_pressure"), s.drop());
    assertEquals("lambda_l2=1 monotone_constraints=1,0,0,0,0,0,0,0", s.params());
    Select.Setting base = Select.Setting.parse("base:trees=30");
    assertEquals("monotone_constraints=1,0,0,0,0,0,0,0", base.params());
    assertEquals("regression", base.objective());
    assertThrows(IllegalArgumentException.class, () -> Select.Setting.parse("y:depth=3"));
    assertThrows(IllegalArgumentException.class, () -> Select.Setting.parse("no colon"));
  }
}
