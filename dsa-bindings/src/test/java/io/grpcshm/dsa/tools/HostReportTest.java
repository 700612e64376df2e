package io.grpcshm.dsa.tools;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostReportTest {
  @TempDir Path tmp;

  @Test
  void reportSaysWhichDsaChecksRanAndWhichDidNot() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    // A fresh thread: the report lowers the timer slack of its thread.
    Thread t = Thread.ofPlatform().unstarted(() -> HostReport.main(new String[] {"--no-calibrate",
        "--workers", "1", "--sysfs", tmp.resolve("no-bus").toString(), "--dev",
        tmp.resolve("no-dev").toString()}));
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      t.start();
      t.join(60_000);
    } finally {
      System.setOut(old);
    }
    String report = out.toString(StandardCharsets.UTF_8);
    assertTrue(report.contains("DSA path checks on this host:"), report);
    assertTrue(report.contains("[ran]     kernel write() submission path (mainline 6.10; stable"
        + " 6.1.91, 6.8.10, 6.9.1): idxd write() submission is in mainline"), report);
    assertTrue(report.contains("[ran]     sysfs discovery"), report);
    assertTrue(report.contains("[not run] open + NOOP probe via write(): no usable queue"),
        report);
    assertTrue(report.contains("[not run] completion bound"), report);
    assertTrue(report.contains("[not run] copies on the device: no DSA work queue here"), report);
    assertTrue(report.contains("[not run] page-fault resume"), report);
  }

  @Test
  void badArgumentsExitWithTwoAndHelpWithZero() {
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      assertEquals(2, HostReport.run("--bogus"));
      assertEquals(2, HostReport.run("--workers", "many"));
      assertEquals(2, HostReport.run("--workers", "0"));
      assertEquals(0, HostReport.run("--help"));
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    String errors = err.toString(StandardCharsets.UTF_8);
    assertTrue(errors.contains("Unknown option: '--bogus'"), errors);
    assertTrue(errors.contains("--workers must be at least 1"), errors);
    assertTrue(out.toString(StandardCharsets.UTF_8).contains("--no-calibrate"), out.toString());
  }
}
