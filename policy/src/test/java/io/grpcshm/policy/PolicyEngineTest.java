package io.grpcshm.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.policy.internal.ModelArtifact;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PolicyEngineTest {
  @TempDir Path dir;

  static CallFeatures f(long size) {
    return new CallFeatures(size, CallFeatures.REUSE_UNKNOWN, 1.0, 200, 1);
  }

  PolicyEngine engine(boolean correction) {
    return PolicyEngine.builder().modelText(TestModels.artifact()).deploymentMode(Mode.ASYNC)
        .onlineCorrection(correction).build();
  }

  @Test
  void argminOverCandidatesFollowsTheModel() {
    PolicyEngine e = engine(false);
    assertTrue(e.hasModel(), e.status());
    Decision small = e.decide(f(64 << 10));
    assertEquals(MoverKind.CPU, small.mover());
    assertEquals(Decision.Basis.MODEL, small.basis());
    assertEquals(Math.expm1(1), small.predictedMicros(), 1e-9);
    Decision large = e.decide(f(8 << 20));
    assertEquals(MoverKind.SOFTWARE, large.mover());
    assertEquals(Math.expm1(3), large.predictedMicros(), 1e-9);
    assertFalse(large.cacheInjection());
  }

  @Test
  void cacheHitReturnsTheSameDecisionForTheSameBucket() {
    PolicyEngine e = engine(false);
    Decision a = e.decide(f(100_000));
    Decision b = e.decide(f(100_001)); // same quarter-octave bucket
    assertSame(a, b);
  }

  @Test
  void decisionsAreMemoisedPerBucket() {
    // 250 streams values x 4 sizes = 1 000 buckets in a 4096-decision memo (8192 slots, two-way):
    // nearly all are kept, and a decision recomputed after a collision is equal to the first.
    PolicyEngine e = PolicyEngine.builder().modelText(TestModels.artifact()).cacheSize(4096)
        .build();
    java.util.Map<Long, Decision> first = new java.util.HashMap<>();
    for (int streams = 0; streams < 250; streams++) {
      for (long size : new long[] {4096, 64 << 10, 1 << 20, 8 << 20}) {
        Decision d = e.decide(new CallFeatures(size, CallFeatures.REUSE_UNKNOWN, 1.0, 200,
            streams));
        first.put(size * 1000 + streams, d);
      }
    }
    int same = 0;
    for (int streams = 0; streams < 250; streams++) {
      for (long size : new long[] {4096, 64 << 10, 1 << 20, 8 << 20}) {
        Decision d = e.decide(new CallFeatures(size, CallFeatures.REUSE_UNKNOWN, 1.0, 200,
            streams));
        assertEquals(first.get(size * 1000 + streams), d, size + "/" + streams);
        same += first.get(size * 1000 + streams) == d ? 1 : 0;
      }
    }
    assertTrue(same >= 950, "memoised decisions: " + same + " of 1000");
    // Without a cache every call computes a new (equal) decision.
    PolicyEngine none = PolicyEngine.builder().modelText(TestModels.artifact()).cacheSize(0)
        .build();
    Decision x = none.decide(f(4096));
    Decision y = none.decide(f(4096));
    assertNotSame(x, y);
    assertEquals(x, y);
  }

  @Test
  void neverChoosesDsaWhereItIsAbsent() {
    // A model that would love DSA: mover category 2 gets the cheapest leaf.
    String loveDsa = TestModels.artifact().replace("cat_threshold=1", "cat_threshold=4")
        .replace("leaf_value=1 5 3", "leaf_value=0 0 9").replace("candidates=cpu,software",
            "candidates=cpu,dsa+bypass,dsa+inject,software");
    PolicyEngine noDsa = PolicyEngine.builder().modelText(loveDsa)
        .hostMovers(EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE)).build();
    PolicyEngine withDsa = PolicyEngine.builder().modelText(loveDsa)
        .hostMovers(EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE, MoverKind.DSA)).build();
    Random r = new Random(1);
    for (int i = 0; i < 2000; i++) {
      CallFeatures x = new CallFeatures(r.nextLong(64L << 20), r.nextInt(3) - 1,
          r.nextDouble() * 100, r.nextDouble() * 500, r.nextInt(8));
      assertNotEquals(MoverKind.DSA, noDsa.decide(x).mover());
    }
    assertEquals(MoverKind.DSA, withDsa.decide(f(4096)).mover());
    // The default model was trained where there is no DSA: DSA is not a candidate even if present.
    PolicyEngine defaultWithDsa = PolicyEngine.builder()
        .hostMovers(EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE, MoverKind.DSA)).build();
    assertTrue(defaultWithDsa.candidates().stream().noneMatch(c -> c.mover() == MoverKind.DSA));
  }

  @Test
  void corruptOrIncompatibleModelFallsBackWithTheReason() throws Exception {
    Path bad = dir.resolve("model.txt");
    Files.writeString(bad, TestModels.artifact().replace("left_child=1 -1", "left_child=1"));
    PolicyEngine e = PolicyEngine.builder().model(bad).deploymentMode(Mode.ASYNC).build();
    assertFalse(e.hasModel());
    assertTrue(e.status().contains("left_child has 1 values, expected 2"), e.status());
    Decision small = e.decide(f(4096));
    assertEquals(Decision.Basis.FALLBACK, small.basis());
    assertEquals(MoverKind.CPU, small.mover());
    assertTrue(small.reason().contains("left_child"), small.reason());
    assertEquals(MoverKind.SOFTWARE, e.decide(f(2 << 20)).mover()); // ASYNC, >= 1 MiB

    PolicyEngine missing = PolicyEngine.builder().model(dir.resolve("nope.txt")).build();
    assertTrue(missing.status().contains("nope.txt"), missing.status());
    assertEquals(MoverKind.CPU, missing.decide(f(64 << 20)).mover()); // SYNC: CPU

    String otherSchema = TestModels.artifact().replace("policy.features=payload_bytes,",
        "policy.features=size,");
    PolicyEngine incompatible = PolicyEngine.builder().modelText(otherSchema).build();
    assertTrue(incompatible.status().contains("incompatible model: features [size,"),
        incompatible.status());
  }

  @Test
  void nanFeaturesFallBackInsteadOfFailing() {
    PolicyEngine e = engine(false);
    Decision d = e.decide(new CallFeatures(8 << 20, -1, Double.NaN, 200, 1));
    assertEquals(Decision.Basis.FALLBACK, d.basis());
    assertEquals("page-fault rate is NaN", d.reason());
    assertEquals(MoverKind.SOFTWARE, d.mover());
    d = e.decide(new CallFeatures(4096, -1, 0, Double.POSITIVE_INFINITY, 1));
    assertEquals("LLC pressure is Infinity", d.reason());
    d = e.decide(new CallFeatures(-5, -1, 0, 0, 1));
    assertEquals("negative payload size -5", d.reason());
    assertEquals(Decision.Basis.FALLBACK, e.decide(10, 0).basis()); // no Signals configured
  }

  @Test
  void onlineCorrectionMovesTheDecisionWhenObservationsDisagree() {
    PolicyEngine e = engine(true);
    CallFeatures x = f(64 << 10);
    assertEquals(MoverKind.CPU, e.decide(x).mover());
    // CPU turns out to take 1000 µs here: the correction must push the choice to SOFTWARE.
    for (int i = 0; i < 20; i++) {
      Decision d = e.decide(x);
      e.observe(d, x, d.mover() == MoverKind.CPU ? 1000 : Math.expm1(3));
    }
    assertEquals(MoverKind.SOFTWARE, e.decide(x).mover());
    // Without correction, observations change nothing.
    PolicyEngine off = engine(false);
    for (int i = 0; i < 20; i++) {
      off.observe(off.decide(x), x, 1000);
    }
    assertEquals(MoverKind.CPU, off.decide(x).mover());
  }

  @Test
  void modeHintIsTheGlobalArgmin() {
    // Make PIPELINED (mode 2) cheapest for everything via a second tree on the mode feature.
    String t = TestModels.TREES.replace("end of trees", """
        Tree=1
        num_leaves=2
        num_cat=1
        split_feature=7
        split_gain=1
        threshold=0
        decision_type=1
        left_child=-1
        right_child=-2
        leaf_value=-0.5 0
        leaf_weight=1 1
        leaf_count=1 1
        internal_value=0
        internal_weight=0
        internal_count=2
        cat_boundaries=0 1
        cat_threshold=4
        is_linear=0
        shrinkage=1


        end of trees""");
    String art = io.grpcshm.policy.internal.ModelArtifact.write(
        java.util.Map.of("candidates", "cpu,software"), t);
    PolicyEngine e = PolicyEngine.builder().modelText(art).deploymentMode(Mode.SYNC).build();
    Decision d = e.decide(f(4096));
    assertEquals(Mode.PIPELINED, d.modeHint());
    assertEquals(MoverKind.CPU, d.mover());
    assertEquals(Math.expm1(1), d.predictedMicros(), 1e-9); // the SYNC prediction
  }

  /**
   * With a residual size cap the trees see sizes capped there and the line alone carries the
   * size beyond it: the hand-written CPU tree switches from leaf 1 to leaf 5 at 1 MiB, so with
   * the cap at 512 KiB a 4 MiB CPU message stays on leaf 1, on the miss path (leaf masks), in
   * the cache and in predictMicros alike.
   */
  @Test
  void treesSeeSizesCappedAtTheResidualSizeCap() {
    String art = io.grpcshm.policy.internal.ModelArtifact.write(java.util.Map.of(
        "candidates", "cpu,software", "baseline", "cpu:0+1,software:0+1",
        io.grpcshm.policy.internal.ModelArtifact.SIZE_CAP_KEY, "524288"), TestModels.TREES);
    for (long cache : new long[] {0, 64}) {
      PolicyEngine e = PolicyEngine.builder().modelText(art).cacheSize(cache).build();
      assertTrue(e.status().contains("residual flat above 512 KiB"), e.status());
      long size = 4L << 20;
      double expected = Math.expm1(1 + Math.log1p(4));
      Candidate cpu = new Candidate(MoverKind.CPU, false, Mode.SYNC);
      assertEquals(expected, e.predictMicros(f(size), cpu), 1e-9);
      Decision d = e.decide(f(size));
      assertEquals(MoverKind.CPU, d.mover()); // e^1 * 5 < e^3 * 5
      assertEquals(Math.expm1(1 + Math.log1p(Buckets.representative(
          Buckets.sizeBucket(size), Buckets.SIZE_SUB) / (1 << 20))), d.predictedMicros(), 1e-6);
    }
    String noCap = io.grpcshm.policy.internal.ModelArtifact.write(java.util.Map.of(
        "candidates", "cpu,software", "baseline", "cpu:0+1,software:0+1"), TestModels.TREES);
    assertEquals(Math.expm1(5 + Math.log1p(4)), PolicyEngine.builder().modelText(noCap).build()
        .predictMicros(f(4L << 20), new Candidate(MoverKind.CPU, false, Mode.SYNC)), 1e-6);
  }

  private static io.grpcshm.dsa.Calibration line(double fixedUs, double usPerMib) {
    return new io.grpcshm.dsa.Calibration(Math.round(fixedUs * 1000), usPerMib * 1000 / (1 << 20),
        new long[0], new long[0], true);
  }

  /**
   * This host's calibrations scale the recorded lines by the mean log ratio over the movers
   * whose recorded line was measured: CPU's recorded line here is a rejected calibration's
   * defaults, so only the software engine's ratio (host 3x slower) counts, and every candidate's
   * prediction is 3x (in 1 + µs) what the recorded lines give, with the same choices.
   */
  @Test
  void hostCalibrationScalesEveryPredictionByTheMeasuredMovers() {
    String art = ModelArtifact.write(java.util.Map.of("candidates", "cpu,software",
        "baseline", "cpu:2.000+52.4288,software:0+10"), TestModels.TREES);
    java.util.Map<MoverKind, io.grpcshm.dsa.Calibration> host = java.util.Map.of(
        MoverKind.CPU, line(0, 5), MoverKind.SOFTWARE, line(0, 30));
    for (long cache : new long[] {0, 64}) {
      PolicyEngine recorded = PolicyEngine.builder().modelText(art).cacheSize(cache).build();
      PolicyEngine scaled = PolicyEngine.builder().modelText(art).cacheSize(cache)
          .hostCalibration(host).build();
      assertTrue(scaled.status().contains("scaled to this host by [software 0.0 us + 30.00"
          + " us/MiB] (x2.82 at 1 MiB, x3.00 at 64 MiB), not by cpu: its recorded line is not"
          + " measured"), scaled.status());
      assertEquals(30.0 * 64, scaled.hostLineMicros(MoverKind.SOFTWARE, 64 << 20), 1e-6);
      assertEquals(5.0 * 64, scaled.hostLineMicros(MoverKind.CPU, 64 << 20), 1e-6);
      assertTrue(Double.isNaN(recorded.hostLineMicros(MoverKind.CPU, 64 << 20)));
      for (long size : new long[] {64 << 10, 4 << 20, 1L << 30}) {
        for (Candidate c : scaled.candidates()) {
          double ratio = (1 + scaled.predictMicros(f(size), c))
              / (1 + recorded.predictMicros(f(size), c));
          assertEquals((1 + 30.0 * size / (1 << 20)) / (1 + 10.0 * size / (1 << 20)), ratio,
              1e-9, c + " at " + size);
        }
        Decision a = recorded.decide(f(size));
        Decision b = scaled.decide(f(size));
        assertEquals(a.mover(), b.mover());
        assertEquals(a.modeHint(), b.modeHint());
        assertTrue(b.predictedMicros() > a.predictedMicros(), b + " vs " + a);
      }
    }
  }

  /** A choice of {@code mover}, as a transport hands it back to {@code observe}. */
  private static io.grpcshm.dsa.MoverChoice chose(MoverKind mover) {
    return new io.grpcshm.dsa.MoverChoice() {
      @Override public MoverKind mover() { return mover; }
      @Override public boolean cacheInjection() { return false; }
      @Override public double predictedMicros() { return Double.NaN; }
      @Override public String basisLabel() { return "model"; }
      @Override public String reason() { return ""; }
    };
  }

  /**
   * The expected copy is the mover's host line times the median observed/line of its last five
   * copies of at least 1 MiB: the line alone until three were seen, one copy into cold memory
   * does not move it, small copies and other movers' copies do not count, decisions do not
   * change.
   */
  @Test
  void expectedCopyIsTheHostLineScaledByTheMediansOfRecentCopies() {
    String art = ModelArtifact.write(java.util.Map.of("candidates", "cpu,software",
        "baseline", "cpu:0+20,software:0+10"), TestModels.TREES);
    PolicyEngine e = PolicyEngine.builder().modelText(art).hostCalibration(java.util.Map.of(
        MoverKind.CPU, line(0, 5), MoverKind.SOFTWARE, line(0, 30))).build();
    long mib64 = 64 << 20;
    double cpuLine = 5.0 * 64;
    Decision before = e.decide(f(mib64));
    assertEquals(cpuLine, e.expectedCopyMicros(MoverKind.CPU, mib64), 1e-9);
    e.observe(chose(MoverKind.CPU), mib64, -1, Mode.SYNC, 2 * cpuLine);
    e.observe(chose(MoverKind.CPU), mib64, -1, Mode.SYNC, 20 * cpuLine); // first touch
    assertEquals(cpuLine, e.expectedCopyMicros(MoverKind.CPU, mib64), 1e-9, "two seen");
    e.observe(chose(MoverKind.CPU), 512 << 10, -1, Mode.SYNC, 1e6); // below 1 MiB: ignored
    e.observe(chose(MoverKind.CPU), 16 << 20, -1, Mode.SYNC, 2.5 * 5 * 16);
    assertEquals(2.5 * cpuLine, e.expectedCopyMicros(MoverKind.CPU, mib64), 1e-9,
        "median of 2, 20, 2.5");
    e.observe(chose(MoverKind.CPU), mib64, -1, Mode.SYNC, 2 * cpuLine);
    assertEquals(2.25 * cpuLine, e.expectedCopyMicros(MoverKind.CPU, mib64), 1e-9,
        "median of 2, 20, 2.5, 2");
    for (int i = 0; i < 5; i++) {
      e.observe(chose(MoverKind.CPU), mib64, -1, Mode.SYNC, 0.5 * cpuLine);
    }
    assertEquals(0.5 * 5 * 8, e.expectedCopyMicros(MoverKind.CPU, 8 << 20), 1e-9,
        "only the last five count, at any size");
    assertEquals(30.0 * 64, e.expectedCopyMicros(MoverKind.SOFTWARE, mib64), 1e-9);
    assertTrue(Double.isNaN(e.expectedCopyMicros(MoverKind.DSA, mib64)), "no line, no estimate");
    Decision after = e.decide(f(mib64));
    assertEquals(before.mover(), after.mover());
    assertEquals(before.predictedMicros(), after.predictedMicros(), 1e-9);
  }

  /** A rejected calibration (its defaults) or none leaves the recorded lines as they are. */
  @Test
  void rejectedHostCalibrationsLeaveTheRecordedLines() {
    String art = ModelArtifact.write(java.util.Map.of("candidates", "cpu,software",
        "baseline", "cpu:0+20,software:0+10"), TestModels.TREES);
    PolicyEngine recorded = PolicyEngine.builder().modelText(art).build();
    PolicyEngine rejected = PolicyEngine.builder().modelText(art).hostCalibration(java.util.Map.of(
        MoverKind.CPU, io.grpcshm.dsa.Calibration.fallback("3 measurements rejected"),
        MoverKind.SOFTWARE, io.grpcshm.dsa.Calibration.UNCALIBRATED)).build();
    assertTrue(rejected.status().contains("unscaled (no usable host calibration: cpu: defaults:"
        + " 3 measurements rejected; software: not calibrated)"), rejected.status());
    Candidate sw = new Candidate(MoverKind.SOFTWARE, false, Mode.SYNC);
    assertEquals(recorded.predictMicros(f(64 << 20), sw), rejected.predictMicros(f(64 << 20), sw));
    assertTrue(Double.isNaN(rejected.hostLineMicros(MoverKind.CPU, 64 << 20)));
    assertTrue(recorded.status().contains("unscaled (no usable host calibration)"),
        recorded.status());
  }

  @Test
  void aMalformedResidualSizeCapRejectsTheModel() {
    String key = io.grpcshm.policy.internal.ModelArtifact.SIZE_CAP_KEY;
    for (var meta : java.util.List.of(
        java.util.Map.of("candidates", "cpu", key, "1048576"),
        java.util.Map.of("candidates", "cpu", "baseline", "cpu:0+1", key, "8M"),
        java.util.Map.of("candidates", "cpu", "baseline", "cpu:0+1", key, "0"))) {
      PolicyEngine e = PolicyEngine.builder().modelText(
          io.grpcshm.policy.internal.ModelArtifact.write(meta, TestModels.TREES)).build();
      assertFalse(e.hasModel(), meta.toString());
      assertTrue(e.status().contains(key), e.status());
      assertEquals(Decision.Basis.FALLBACK, e.decide(f(4096)).basis());
    }
  }

  /**
   * A miss is scored with leaf-mask tables, not by walking trees. Whatever the path, the
   * decision must be the argmin of the full model at the bucket's representative features, with
   * the very same predicted value.
   */
  @Test
  void missesEqualTheFullModelAtTheBucketRepresentative() throws Exception {
    ModelArtifact shipped;
    try (InputStream in = PolicyEngine.class.getResourceAsStream(
        PolicyEngine.DEFAULT_MODEL_RESOURCE)) {
      shipped = ModelArtifact.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
    }
    Random r = new Random(5);
    for (Mode m : Mode.values()) {
      PolicyEngine e = PolicyEngine.builder().deploymentMode(m).cacheSize(0).build();
      assertTrue(e.hasModel(), e.status());
      for (int i = 0; i < 3000; i++) {
        CallFeatures f = new CallFeatures((long) Math.exp(r.nextDouble() * 18),
            r.nextInt(4) - 1, r.nextDouble() * (r.nextBoolean() ? 4 : 80),
            120 + r.nextDouble() * 400, r.nextInt(6));
        int sb = Buckets.sizeBucket(f.payloadBytes());
        double size = Buckets.representative(sb, Buckets.SIZE_SUB);
        double reuse = Buckets.reuseRepresentative(Buckets.reuseBucket(f.reuseWindow()));
        double pf = Buckets.representative(Buckets.pfBucket(f.pageFaultRate()), Buckets.PF_SUB)
            / Buckets.PF_SCALE;
        double llc = Buckets.representative(Buckets.llcBucket(f.llcPressure()), Buckets.LLC_SUB)
            / Buckets.LLC_SCALE;
        double best = Double.POSITIVE_INFINITY;
        MoverKind bestMover = null;
        for (Candidate c : e.candidates()) {
          if (c.mode() != m) {
            continue;
          }
          double[] x = new double[io.grpcshm.policy.internal.Schema.WIDTH];
          io.grpcshm.policy.internal.Schema.context(x, size, reuse, pf, llc, f.activeStreams());
          io.grpcshm.policy.internal.Schema.config(x, c.mover(), c.cacheInjection(), c.mode());
          double y = Math.expm1(shipped.predictLog(x));
          if (y < best) {
            best = y;
            bestMover = c.mover();
          }
        }
        Decision d = e.decide(f);
        assertEquals(bestMover, d.mover(), f.toString());
        assertEquals(Double.doubleToRawLongBits(best),
            Double.doubleToRawLongBits(d.predictedMicros()), f.toString());
      }
      assertTrue(e.status().contains("leaf masks"), e.status());
    }
  }

  @Test
  void bucketsAreMonotoneAndRepresentativesLieInside() {
    int prev = -1;
    for (long v = 0; v < 1 << 22; v = v * 9 / 8 + 1) {
      int b = Buckets.bucket(v, 2);
      assertTrue(b >= prev);
      prev = b;
      double rep = Buckets.representative(b, 2);
      assertEquals(b, Buckets.bucket((long) rep, 2), "value " + v);
    }
    assertEquals(Buckets.sizeBucket(100_000), Buckets.sizeBucket(100_001));
    assertNotEquals(Buckets.sizeBucket(1 << 20), Buckets.sizeBucket(2 << 20));
  }

  /**
   * The shipped model's decision surface (docs/POLICY.md). It was trained without the page-fault
   * rate and the LLC proxy, so only size, active streams and the call's mode move it: up to
   * 1 MiB every mode stays on the CPU; in SYNC one stream's 16 MiB goes to the parallel copy,
   * two streams' stays on the CPU; one stream's moves of 64 MiB and more go to the parallel copy
   * in every mode, and to the software engine in ASYNC/PIPELINED when the caller reads the
   * message back at once. Retraining the default model may move these boundaries.
   */
  @Test
  void shippedModelSwitchesWithSizeStreamsAndMode() {
    PolicyEngine e = PolicyEngine.builder().build();
    assertTrue(e.hasModel(), e.status());
    for (Mode m : Mode.values()) {
      for (int streams = 1; streams <= 3; streams++) {
        for (long size : new long[] {4096, 256 << 10, 1 << 20}) {
          assertEquals(MoverKind.CPU, e.decide(new CallFeatures(size, -1, 0, 0, streams), m)
              .mover(), m + " " + size + " B, " + streams + " streams");
        }
      }
    }
    assertEquals(MoverKind.PARALLEL, e.decide(new CallFeatures(16 << 20, -1, 0, 0, 1), Mode.SYNC)
        .mover());
    assertEquals(MoverKind.CPU, e.decide(new CallFeatures(16 << 20, -1, 0, 0, 2), Mode.SYNC)
        .mover());
    for (long mib : new long[] {64, 120, 1024}) {
      for (Mode m : Mode.values()) {
        assertEquals(MoverKind.PARALLEL, e.decide(new CallFeatures(mib << 20, -1, 0, 0, 1), m)
            .mover(), m + " " + mib + " MiB");
        if (m != Mode.SYNC) {
          assertEquals(MoverKind.SOFTWARE, e.decide(new CallFeatures(mib << 20,
              CallFeatures.REUSE_IMMEDIATE, 0, 0, 1), m).mover(), m + " " + mib + " MiB reused");
        }
      }
    }
  }
}
