package io.grpcshm.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.util.EnumSet;
import org.junit.jupiter.api.Test;

/** The call's mode picks the candidates; signals the model does not use are never sampled. */
class ModesAndSignalsTest {
  private static CallFeatures f(long size) {
    return new CallFeatures(size, CallFeatures.REUSE_UNKNOWN, 0, 0, 1);
  }

  @Test
  void eachCallDecidesAmongItsOwnModesCandidates() {
    PolicyEngine e = PolicyEngine.builder().modelText(TestModels.modeArtifact())
        .hostMovers(EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE)).deploymentMode(Mode.SYNC)
        .build();
    assertTrue(e.hasModel(), e.status());
    Decision sync = e.decide(f(8 << 20), Mode.SYNC);
    Decision async = e.decide(f(8 << 20), Mode.ASYNC);
    Decision pipelined = e.decide(f(8 << 20), Mode.PIPELINED);
    assertEquals(MoverKind.CPU, sync.mover());
    assertEquals(Math.expm1(1), sync.predictedMicros(), 1e-9);
    assertEquals(MoverKind.SOFTWARE, async.mover());
    assertEquals(Math.expm1(2.5), async.predictedMicros(), 1e-9);
    assertEquals(MoverKind.SOFTWARE, pipelined.mover());
    // Same bucket, other mode: memoised apart, each hit returns its own mode's decision.
    assertSame(sync, e.decide(f(8 << 20), Mode.SYNC));
    assertSame(async, e.decide(f(8 << 20), Mode.ASYNC));
    assertSame(sync, e.decide(f(8 << 20)), "without a mode: the deployment mode");
    // The fallback rule also follows the call's mode.
    PolicyEngine none = PolicyEngine.builder().modelText("not a model")
        .hostMovers(EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE)).build();
    assertEquals(MoverKind.CPU, none.decide(f(8 << 20), Mode.SYNC).mover());
    assertEquals(MoverKind.SOFTWARE, none.decide(f(8 << 20), Mode.ASYNC).mover());
    assertEquals(Mode.ASYNC, none.decide(f(8 << 20), Mode.ASYNC).modeHint());
  }

  @Test
  void signalsTheModelDoesNotUseAreNotSampled() {
    try (Signals s = Signals.start(() -> 1)) {
      PolicyEngine e = PolicyEngine.builder().signals(s).build(); // the shipped model
      assertTrue(e.hasModel(), e.status());
      assertFalse(e.usesSampledSignals(), "the shipped model splits on pf_rate/llc_pressure");
      for (int i = 0; i < 1000; i++) {
        e.decide(4096L << (i & 15), CallFeatures.REUSE_UNKNOWN, Mode.values()[i % 3]);
      }
      assertFalse(s.sampling(), "no sampling thread for signals nobody reads");
      assertEquals(0, s.samples());
      // A reader of a sampled signal starts it.
      s.pageFaultRate();
      assertTrue(s.sampling());
      assertTrue(s.awaitSamples(1, java.time.Duration.ofSeconds(10)));
    }
  }
}
