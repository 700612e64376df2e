package io.grpcshm.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.dsa.Calibration;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.policy.internal.TraceCsv;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The shipped model beyond its training data (the training run stops at 32 MiB), as the engine
 * deployed on the profiled host predicts it: scaled by that run's own calibrated lines (each
 * trace row carries them), as {@link DefaultPolicyProvider} scales it by the host's. Against
 * {@code traces/large-r7.csv} (48 MiB-1 GiB, idle host, profiled after the model was chosen) and
 * {@code traces/large-r6.csv} (64 MiB-1 GiB, load 7-9) every message within 2x. A live 64 MiB
 * message measured here, against the engine built on this host's own calibration, within 4x
 * (this host's load is not the profiling run's; the check catches a prediction blind to size,
 * which was 40x off at 1 GiB). Predictions also grow with the size past the largest profiled one.
 */
class ExtrapolationTest {
  private static final Path TRAIN = Path.of("traces/train-r6.csv");
  private static final Path LARGE = Path.of("traces/large-r6.csv");
  private static final Path UNSEEN_LARGE = Path.of("traces/large-r7.csv");
  private static final Set<MoverKind> MOVERS =
      EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE, MoverKind.PARALLEL);

  /** The engine over the model's recorded lines (no host calibration). */
  private static PolicyEngine engine() {
    return engine(Map.of());
  }

  private static PolicyEngine engine(Map<MoverKind, Calibration> host) {
    PolicyEngine e = PolicyEngine.builder().hostMovers(MOVERS).hostCalibration(host).build();
    assertTrue(e.hasModel(), e.status());
    return e;
  }

  /**
   * large-r7 (48, 64, 160, 256, 640 MiB and 1 GiB, seed 21, idle host): profiled after the
   * shipped model was trained. Over the model's recorded lines (the training host's, under load
   * 4-8) 50 of these 54 are predicted 1.4-3.5x high; scaled by the run's calibration all are
   * within 2x.
   */
  @Test
  void withinTwiceOfAProfileRecordedAfterTheModelWasChosen() throws Exception {
    Ratios r = ratios(UNSEEN_LARGE);
    assertEquals(54, r.rows(), r.report());
    assertEquals(0, r.outside(2), r.report());
  }

  /**
   * large-r6 (64 MiB, 256 MiB, 1 GiB; read while the residual cap was chosen, so not unseen): it
   * ran at load 7-9, and its 1 GiB messages took longer than its start-up calibration says (1 GiB
   * SYNC CPU 154 ms here, 99 ms on the idle large-r7 host): the 1 GiB ASYNC/PIPELINED ones are the
   * closest to the bound, predicted about half of what they measured.
   */
  @Test
  void withinTwiceOfTheCopiesOfABusierRun() throws Exception {
    Ratios r = ratios(LARGE);
    assertEquals(27, r.rows(), r.report());
    assertEquals(0, r.outside(2), r.report());
  }

  /** Predicted/measured per row of {@code traces}, the engine built with the run's lines. */
  record Ratios(List<Double> ratios, String report) {
    int rows() {
      return ratios.size();
    }

    long outside(double factor) {
      return ratios.stream().filter(x -> !(x >= 1 / factor && x <= factor)).count();
    }
  }

  private static Ratios ratios(Path traces) throws Exception {
    long largestTrained = TraceCsv.read(TRAIN).stream().mapToLong(TraceCsv.Row::payloadBytes)
        .max().orElseThrow();
    List<TraceCsv.Row> large = TraceCsv.read(traces);
    assertFalse(large.isEmpty());
    Map<String, Map<MoverKind, Calibration>> calibrations = TraceCsv.calibrations(large);
    assertEquals(1, calibrations.size(), "one run per trace file: " + calibrations.keySet());
    Map<MoverKind, Calibration> host = calibrations.values().iterator().next();
    assertEquals(MOVERS, host.keySet(), "every mover's line is recorded");
    PolicyEngine e = engine(host);
    PolicyEngine recorded = engine();
    StringBuilder report = new StringBuilder(traces + ", " + e.status());
    List<Double> ratios = new ArrayList<>();
    for (TraceCsv.Row r : large) {
      assertTrue(r.payloadBytes() > largestTrained, "not beyond the data: " + r);
      CallFeatures f = new CallFeatures(r.payloadBytes(), r.reuseWindow(), r.pfRate(),
          r.llcPressure(), r.activeStreams());
      Candidate c = new Candidate(r.mover(), r.cacheInjection(), r.mode());
      double predicted = e.predictMicros(f, c);
      double ratio = predicted / r.latencyUs();
      report.append(String.format(Locale.ROOT, "%n%d MiB %s %s: predicted %.0f us, measured %.0f"
          + " us (%.2fx; unscaled %.2fx)", r.payloadBytes() >> 20, r.mode(),
          r.mover(), predicted, r.latencyUs(), ratio, recorded.predictMicros(f, c)
              / r.latencyUs()));
      ratios.add(ratio);
    }
    System.out.println(report);
    return new Ratios(ratios, report.toString());
  }

  /**
   * Over the model's recorded lines and over a recorded host calibration (large-r7's): fixed
   * inputs, so the check does not depend on this host's load.
   */
  @Test
  void predictionsGrowWithTheSize() throws Exception {
    Map<MoverKind, Calibration> idleHost = TraceCsv.calibrations(TraceCsv.read(UNSEEN_LARGE))
        .values().iterator().next();
    for (PolicyEngine e : List.of(engine(), engine(idleHost))) {
      Candidate cpu = new Candidate(MoverKind.CPU, false, Mode.SYNC);
      double prev = 0;
      for (long mib : new long[] {4, 8, 16, 32, 64, 120, 256, 1024}) {
        double p = e.predictMicros(new CallFeatures(mib << 20, CallFeatures.REUSE_UNKNOWN, 0, 0,
            1), cpu);
        assertTrue(p > prev * 1.2, mib + " MiB predicted " + p + " us, not above " + prev + "; "
            + e.status());
        prev = p;
      }
    }
  }

  /**
   * A live check at 64 MiB, measured as the profiler measures a SYNC CPU message (the source is
   * produced, then copied): two 64 MiB buffers. The engine is the deployed one: this host's
   * movers, their lines measured as {@link DefaultPolicyProvider} measures them. Within 4x: this
   * host's load is not the profiling run's.
   *
   * <p>The message is timed as the calibration times a copy, so that both see the same host:
   * five messages before the engine calibrates and five after, and the calibration's statistic
   * (the median once the slowest quarter is dropped). The fastest of five alone is not: on a host
   * whose two cores are both busy the calibration's lines describe the busy host (the
   * two-thread mover is slowed most), while one message in five may run in a quiet moment;
   * a run with both cores busy saw 14.9 ms predicted against a fastest of 3.7 ms (4.7-9.1 ms for
   * the other four).
   */
  @Test
  void withinFourTimesOfALive64MiBMessageOnThisHostsCalibration() {
    long n = 64L << 20;
    long[] ns = new long[10];
    PolicyEngine e;
    try (Arena a = Arena.ofConfined()) {
      MemorySegment src = a.allocate(n, 4096);
      MemorySegment dst = a.allocate(n, 4096);
      src.fill((byte) 1);
      dst.fill((byte) 2);
      MemorySegment.copy(src, 0, dst, 0, n);
      timeMessages(src, dst, ns, 0, 5);
      try (MoverRegistry movers = MoverRegistry.open(MoverRegistry.Options.defaults().dsa(false)
          .softwareWorkers(1))) {
        e = PolicyEngine.builder().hostMovers(movers).hostCalibration(movers).build();
      }
      timeMessages(src, dst, ns, 5, 10);
    }
    double measured = trimmedMedian(ns) / 1000.0;
    double predicted = e.predictMicros(new CallFeatures(n, CallFeatures.REUSE_UNKNOWN, 0, 0, 1),
        new Candidate(MoverKind.CPU, false, Mode.SYNC));
    double ratio = predicted / measured;
    String result = String.format(Locale.ROOT, "64 MiB sync CPU message (fill + copy): predicted"
        + " %.0f us, measured %.0f us (trimmed median of %s), %.2fx; %s", predicted, measured,
        Arrays.toString(ns), ratio, e.status());
    System.out.println(result);
    assertTrue(ratio >= 0.25 && ratio <= 4, result);
  }

  /** Times SYNC CPU messages {@code from..to-1}: produce the source, then copy it. */
  private static void timeMessages(MemorySegment src, MemorySegment dst, long[] ns, int from,
      int to) {
    for (int i = from; i < to; i++) {
      long t0 = System.nanoTime();
      src.fill((byte) i);
      MemorySegment.copy(src, 0, dst, 0, src.byteSize());
      ns[i] = System.nanoTime() - t0;
    }
  }

  /** The calibration's statistic: the median after dropping the slowest quarter. */
  private static long trimmedMedian(long[] samples) {
    long[] sorted = samples.clone();
    Arrays.sort(sorted);
    int kept = Math.max(1, sorted.length - sorted.length / 4);
    return sorted[(kept - 1) / 2];
  }
}
