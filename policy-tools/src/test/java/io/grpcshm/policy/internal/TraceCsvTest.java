package io.grpcshm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TraceCsvTest {
  @TempDir Path dir;

  static TraceCsv.Row row(String wl, MoverKind m, Mode mode, double us) {
    return new TraceCsv.Row("r", wl, 65536, 0, 1.5, 200, 2, m, false, mode, us, 1, 2, true,
        "procstat", "proxy");
  }

  @Test
  void roundTrip() throws Exception {
    Path f = dir.resolve("t.csv");
    TraceCsv.Row r = row("w1", MoverKind.SOFTWARE, Mode.ASYNC, 12.5);
    Files.writeString(f, TraceCsv.header() + "\n" + r.toCsv() + "\n");
    List<TraceCsv.Row> rows = TraceCsv.read(f);
    assertEquals(List.of(r), rows);
  }

  private static TraceCsv.Row lined(String run, MoverKind m, double fixedUs, double usPerMib) {
    return new TraceCsv.Row(run, "w", 65536, 0, 1.5, 200, 2, m, false, Mode.SYNC, 10, 0, 1,
        false, "procstat", "proxy", 5, 0.1, 1.0, fixedUs, usPerMib);
  }

  /**
   * Each run's calibration per mover, read back from the rows; the recorded defaults of a
   * rejected calibration read as not measured; two lines for one mover in one run are an error.
   */
  @Test
  void calibrationsPerRunAndMover() throws Exception {
    Path f = dir.resolve("c.csv");
    Files.writeString(f, TraceCsv.header() + "\n" + String.join("\n",
        lined("a", MoverKind.CPU, 2.0, 52.4288).toCsv(),
        lined("a", MoverKind.SOFTWARE, 191.601, 96.011239).toCsv(),
        lined("a", MoverKind.SOFTWARE, 191.601, 96.011239).toCsv(),
        lined("b", MoverKind.SOFTWARE, 0, 30.637368).toCsv(),
        row("w", MoverKind.PARALLEL, Mode.SYNC, 1).toCsv()) + "\n");
    var c = TraceCsv.calibrations(TraceCsv.read(f));
    assertEquals(List.of("a", "b"), List.copyOf(c.keySet()));
    assertTrue(c.get("a").get(MoverKind.CPU).isFallback(), c.toString());
    var sw = c.get("a").get(MoverKind.SOFTWARE);
    assertTrue(sw.measured());
    assertEquals(191_601, sw.fixedNanos());
    assertEquals(96.011239, sw.microsPerMiB(), 1e-6);
    assertEquals(30.637368, c.get("b").get(MoverKind.SOFTWARE).microsPerMiB(), 1e-6);
    assertEquals(1, c.get("b").size(), "a row without a line adds none");

    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> TraceCsv.calibrations(List.of(lined("a", MoverKind.CPU, 0, 30),
            lined("a", MoverKind.CPU, 0, 31))));
    assertTrue(e.getMessage().contains("run a has two calibrated lines for CPU"), e.getMessage());
  }

  @Test
  void missingColumnsAreNamed() throws Exception {
    Path f = dir.resolve("t.csv");
    Files.writeString(f, "workload_id,payload_bytes,mover,mode\nw,1,CPU,SYNC\n");
    var e = assertThrows(IllegalArgumentException.class, () -> TraceCsv.read(f));
    assertTrue(e.getMessage().contains("missing column(s) [reuse_window, pf_rate, llc_pressure, "
        + "active_streams, cache_injection, latency_us]"), e.getMessage());
  }

  @Test
  void nanFeatureIsNamedWithLineAndColumn() throws Exception {
    Path f = dir.resolve("t.csv");
    String good = row("w1", MoverKind.CPU, Mode.SYNC, 3).toCsv();
    String bad = row("w2", MoverKind.CPU, Mode.SYNC, 3).toCsv().replace(",1.5000,", ",NaN,");
    Files.writeString(f, TraceCsv.header() + "\n" + good + "\n" + bad + "\n");
    var e = assertThrows(IllegalArgumentException.class, () -> TraceCsv.read(f));
    assertTrue(e.getMessage().endsWith("t.csv:3: column 'pf_rate' is NaN (NaN/infinite features "
        + "are not allowed)"), e.getMessage());
  }

  @Test
  void badEnumAndShortRow() throws Exception {
    Path f = dir.resolve("t.csv");
    Files.writeString(f, TraceCsv.header() + "\n"
        + row("w1", MoverKind.CPU, Mode.SYNC, 3).toCsv().replace("CPU", "GPU") + "\n");
    var e = assertThrows(IllegalArgumentException.class, () -> TraceCsv.read(f));
    assertTrue(e.getMessage().contains("unknown mover 'GPU'"), e.getMessage());
    Files.writeString(f, TraceCsv.header() + "\nr,w1,4096\n");
    e = assertThrows(IllegalArgumentException.class, () -> TraceCsv.read(f));
    assertTrue(e.getMessage().contains(":2: row has 3 fields"), e.getMessage());
  }

  @Test
  void evaluationScoresChoicesAndRegret() {
    // Two instances: the chooser is right on one, wrong (+10 µs on a 10 µs oracle) on the other.
    List<TraceCsv.Row> rows = List.of(
        row("a", MoverKind.CPU, Mode.SYNC, 10), row("a", MoverKind.SOFTWARE, Mode.SYNC, 20),
        row("b", MoverKind.CPU, Mode.SYNC, 30), row("b", MoverKind.SOFTWARE, Mode.SYNC, 10));
    var inst = Evaluation.instances(rows);
    assertEquals(2, inst.size());
    var d = Evaluation.decisions(inst, in -> in.rows().get(0)); // always CPU
    assertEquals(0.5, d.accuracy());
    assertEquals(10.0, d.meanRegretUs());
    assertEquals(100.0, d.meanRegretPct());
    assertEquals(20.0, d.meanRegretOnMissUs());
    assertEquals(1.0, d.perClass().get("sync_cpu")[1]); // recall of cpu
    assertEquals(0.0, d.perClass().get("sync_software")[1]);
  }
}
