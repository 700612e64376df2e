package io.grpcshm.dsa;

import static org.junit.jupiter.api.Assertions.*;

import io.grpcshm.dsa.internal.TimerSlack;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class WaitAndCalibrationTest {
  @Test
  void timerSlackIsLoweredThroughPrctl() throws Exception {
    AtomicLong before = new AtomicLong();
    AtomicLong after = new AtomicLong();
    // A fresh thread: the setting is per thread and we must not leak it into the test runner.
    Thread t = Thread.ofPlatform().start(() -> {
      before.set(TimerSlack.current());
      assertTrue(TimerSlack.set(2_000));
      after.set(TimerSlack.current());
    });
    t.join();
    assertTrue(before.get() > 0, "Linux default slack is 50 us: " + before.get());
    assertEquals(2_000, after.get());
  }

  @Test
  void hybridSleepsAFractionOfThePredictionMinusElapsed() {
    Waits.Hybrid h = new Waits.Hybrid(0.95);
    assertEquals(95_000, h.sleepNanos(100_000, 0));
    assertEquals(45_000, h.sleepNanos(100_000, 50_000));
    assertEquals(0, h.sleepNanos(100_000, 94_000), "below the minimum sleep: just poll");
    assertEquals(0, h.sleepNanos(0, 0), "uncalibrated: just poll");
    assertThrows(IllegalArgumentException.class, () -> new Waits.Hybrid(1.5));
    assertEquals("hybrid(0.95)", WaitStrategy.byName("hybrid").name());
    assertEquals("spin", WaitStrategy.byName("SPIN").name());
    assertEquals("park(50us)", WaitStrategy.byName("park").name());
    assertThrows(IllegalArgumentException.class, () -> WaitStrategy.byName("sleep"));
  }

  @Test
  void fitRecoversAKnownLine() {
    long[] sizes = {4096, 65536, 1 << 20, 4 << 20};
    long[] lat = new long[sizes.length];
    for (int i = 0; i < sizes.length; i++) {
      lat[i] = 5_000 + (long) (0.05 * sizes[i]); // 5 us + 20 GB/s
    }
    Calibration c = Calibrator.fit(sizes, lat);
    assertTrue(c.measured());
    assertEquals(5_000, c.fixedNanos(), 50);
    assertEquals(0.05, c.nanosPerByte(), 1e-4);
    assertEquals(5_000 + 0.05 * (1 << 20), c.predictNanos(1 << 20), 100);
    assertEquals(0.05 * (1 << 20) / 1000, c.microsPerMiB(), 0.1);
  }

  /** Spins for {@code nanos}: a copy whose cost the test decides. */
  private static void takes(long nanos) {
    long end = System.nanoTime() + nanos;
    while (System.nanoTime() - end < 0) {
      Thread.onSpinWait();
    }
  }

  @Test
  void preemptedMeasurementsAreRejectedNotTrusted() {
    // CI on a busy host: every 4 KiB sample preempted -> "L_fixed 331 us, alpha 0, Infinity GB/s".
    long[] sizes = Calibrator.DEFAULT_SIZES;
    long[] flat = {331_000, 330_000, 334_000, 331_500, 332_000};
    Calibration ci = Calibrator.fit(sizes, flat);
    assertNotNull(Calibrator.implausibility(ci), ci.toString());
    long[] smallSlow = {300_000, 280_000, 60_000, 110_000, 420_000};
    assertNotNull(Calibrator.implausibility(Calibrator.fit(sizes, smallSlow)));
    long[] real = {1_500, 8_000, 28_000, 110_000, 430_000}; // about 10 GB/s
    assertNull(Calibrator.implausibility(Calibrator.fit(sizes, real)));
    assertEquals(2, Calibrator.trimmedMedian(new long[] {1, 2, 3, 900, 800}),
        "the slowest quarter is dropped before the median");
  }

  @Test
  void calibrationThatStaysImplausibleFallsBackToConservativeDefaults() {
    long[] sizes = {4096, 64 << 10, 256 << 10, 1 << 20};
    // Small copies always slower than large ones: no attempt can give a positive alpha.
    Calibration c = Calibrator.calibrate("FAKE",
        (src, dst, n) -> takes(n <= (64 << 10) ? 30_000 : 5_000), sizes, 3);
    assertFalse(c.measured());
    assertTrue(c.isFallback(), c.toString());
    assertTrue(c.note().contains("alpha <= 0"), c.note());
    assertTrue(c.nanosPerByte() > 0 && c.predictNanos(1 << 20) > c.predictNanos(4096));
    assertTrue(c.toString().contains("defaults"), c.toString());
  }

  @Test
  void aNoisyFirstAttemptIsMeasuredAgain() {
    long[] sizes = {4096, 64 << 10, 256 << 10, 1 << 20};
    int reps = 3;
    int[] largestSeen = {0};
    Calibration c = Calibrator.calibrate("FAKE", (src, dst, n) -> {
      boolean firstAttempt = largestSeen[0] < 3 + reps; // 3 warm-up copies + reps per size
      if (n == sizes[sizes.length - 1]) {
        largestSeen[0]++;
      }
      takes(firstAttempt && n == sizes[1] ? 400_000 : 2_000 + n / 10); // then 10 GB/s
    }, sizes, reps);
    assertTrue(c.measured(), c.toString());
    assertTrue(largestSeen[0] > 3 + reps, "measured a second time");
    assertTrue(c.gigabytesPerSecond() > 2 && c.gigabytesPerSecond() < 12, c.toString());
  }

  @Test
  void breakEven() {
    Calibration cpu = new Calibration(1_000, 0.05, new long[0], new long[0], true);
    Calibration slowStartFastCopy = new Calibration(11_000, 0.04, new long[0], new long[0], true);
    assertEquals(1_000_000, slowStartFastCopy.breakEvenBytes(cpu));
    Calibration slower = new Calibration(5_000, 0.06, new long[0], new long[0], true);
    assertEquals(-1, slower.breakEvenBytes(cpu));
    Calibration better = new Calibration(500, 0.01, new long[0], new long[0], true);
    assertEquals(0, better.breakEvenBytes(cpu));
  }

  @Test
  void startupCalibrationGivesEveryAvailableMoverAUsableLine() {
    try (MoverRegistry r = MoverRegistry.open(MoverRegistry.Options.defaults().dsa(false)
        .softwareWorkers(1).calibrationSizes(4096, 256 << 10, 1 << 20).calibrationReps(5))) {
      for (MoverKind k : new MoverKind[] {MoverKind.CPU, MoverKind.SOFTWARE}) {
        Calibration c = r.get(k).calibration();
        // A busy host may reject every measurement; then the defaults say why. Either way the
        // line is one a hybrid wait can use: positive bandwidth, longer for larger copies.
        assertTrue(c.measured() || (c.isFallback() && !c.note().isEmpty()), k + ": " + c);
        assertNull(Calibrator.implausibility(c.measured() ? c
            : new Calibration(c.fixedNanos(), c.nanosPerByte(), new long[0], new long[0], true)),
            k + ": " + c);
        assertTrue(c.predictNanos(1 << 20) > c.predictNanos(4096), k + ": " + c);
        if (c.measured()) {
          assertEquals(3, c.medianNanos().length);
        }
      }
      String report = r.report();
      assertTrue(report.contains("CPU") && report.contains("(baseline)"), report);
      assertTrue(report.contains("DSA") && report.contains("disabled"), report);
    }
  }

  /**
   * A policy can measure a mover again at its own sizes; the mover's own calibration (what its
   * waits use) stays as it was.
   */
  @Test
  void aMoverCanBeMeasuredAgainAtOtherSizes() {
    try (MoverRegistry r = MoverRegistry.open(MoverRegistry.Options.defaults().dsa(false)
        .software(false).parallelThreads(1).calibrate(false))) {
      Calibration c = r.measure(MoverKind.CPU, new long[] {64 << 10, 256 << 10, 1 << 20}, 5);
      assertTrue(c.measured() || (c.isFallback() && !c.note().isEmpty()), c.toString());
      if (c.measured()) {
        assertEquals(3, c.medianNanos().length);
        assertTrue(c.predictNanos(1 << 20) > c.predictNanos(64 << 10), c.toString());
      }
      assertFalse(r.get(MoverKind.CPU).calibration().measured(), "own calibration unchanged");
      assertSame(Calibration.UNCALIBRATED, r.measure(MoverKind.SOFTWARE, new long[] {1, 2}, 1));
      assertThrows(IllegalArgumentException.class,
          () -> r.measure(MoverKind.CPU, new long[] {4096}, 5));
    }
  }

  @Test
  void everyStrategyWaitsForARealCopy() {
    try (MoverRegistry r = MoverRegistry.open(MoverRegistry.Options.defaults().dsa(false)
        .softwareWorkers(1).calibrationSizes(4096, 1 << 20).calibrationReps(3));
        Arena a = Arena.ofConfined()) {
      DataMover m = r.get(MoverKind.SOFTWARE);
      MemorySegment src = a.allocate(2 << 20);
      MemorySegment dst = a.allocate(2 << 20);
      src.fill((byte) 9);
      for (WaitStrategy w : new WaitStrategy[] {WaitStrategy.spin(), WaitStrategy.park(),
          WaitStrategy.hybrid(), WaitStrategy.hybrid(0.5)}) {
        dst.fill((byte) 0);
        Completion c = m.submit(src, 0, dst, 0, src.byteSize(), false);
        assertTrue(c.predictedNanos() > 0, "calibrated prediction attached");
        c.await(w);
        assertTrue(c.isSuccess(), w.name());
        assertEquals(-1, src.mismatch(dst), w.name());
        c.release();
      }
    }
  }
}
