package io.grpcshm.policy.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.dsa.MoverKind;
import io.grpcshm.policy.internal.TraceCsv;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ProfileTest {
  @TempDir Path dir;

  @AfterEach
  void noPolicyThreadsLeft() {
    for (Thread t : Thread.getAllStackTraces().keySet()) {
      assertFalse(t.getName().startsWith("policy-") && t.isAlive(), "left running: " + t);
    }
  }

  @Test
  void tinySweepWritesTracesAndResumes() throws Exception {
    Path out = dir.resolve("sub/traces.csv");
    String[] args = {"--out", out.toString(), "--sizes", "4K,64K", "--hogs", "0,1",
        "--clients", "1,2", "--fresh", "0", "--reuse", "0", "--burst", "2", "--reps", "1",
        "--no-calibrate", "--limit", "3"};
    assertEquals(0, new CommandLine(new Profile()).execute(args));
    List<TraceCsv.Row> rows = TraceCsv.read(out);
    // 3 workloads x (CPU, SOFTWARE, PARALLEL) x 3 modes; never a DSA row on a host without DSA.
    // PARALLEL needs two cores: on one it is not a candidate.
    int movers = Runtime.getRuntime().availableProcessors() >= 2 ? 3 : 2;
    assertEquals(3 * 3 * movers, rows.size());
    assertTrue(rows.stream().noneMatch(r -> r.mover() == MoverKind.DSA));
    assertTrue(rows.stream().noneMatch(TraceCsv.Row::cacheInjection));
    assertTrue(rows.stream().allMatch(r -> r.latencyUs() > 0 && r.llcPressure() > 0));
    // Measurement quality: repetitions, their spread (max - min) / median, the host's load.
    assertTrue(rows.stream().allMatch(r -> r.reps() == 1 && r.spread() == 0), rows.toString());
    assertTrue(rows.stream().allMatch(r -> r.load1() >= 0), rows.toString());
    // Without calibration there is no calibrated line to train residuals on.
    assertTrue(rows.stream().noneMatch(TraceCsv.Row::hasBaseline));
    assertTrue(Files.readAllLines(out).get(0).equals(TraceCsv.header()));
    // Same command again: everything is done, nothing is appended.
    assertEquals(0, new CommandLine(new Profile()).execute(args));
    assertEquals(9 * movers, TraceCsv.read(out).size());
    // A bigger limit resumes: only the missing workload is measured.
    args[args.length - 1] = "4";
    assertEquals(0, new CommandLine(new Profile()).execute(args));
    assertEquals(12 * movers, TraceCsv.read(out).size());
  }

  @Test
  void refusesToAppendToATraceOfAnotherFormat() throws Exception {
    Path old = dir.resolve("old.csv");
    Files.writeString(old, "run_id,workload_id,payload_bytes,reuse_window,pf_rate,llc_pressure,"
        + "active_streams,mover,cache_injection,mode,latency_us\n");
    CommandLine cl = new CommandLine(new Profile());
    java.io.StringWriter err = new java.io.StringWriter();
    cl.setErr(new java.io.PrintWriter(err));
    int status = cl.execute("--out", old.toString(), "--sizes", "4K", "--no-calibrate",
        "--limit", "1");
    assertTrue(status != 0, "status " + status);
    assertTrue(err.toString().contains("older trace format"), err.toString());
    assertEquals(1, Files.readAllLines(old).size());
  }
}
