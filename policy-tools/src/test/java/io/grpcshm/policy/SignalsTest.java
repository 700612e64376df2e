package io.grpcshm.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.policy.internal.BandwidthHog;
import io.grpcshm.policy.internal.ProcStat;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class SignalsTest {
  /** Every test must leave no sampler, hog or client thread behind. */
  @AfterEach
  void noPolicyThreadsLeft() {
    for (Thread t : Thread.getAllStackTraces().keySet()) {
      assertFalse(t.getName().startsWith("policy-") && t.isAlive(), "left running: " + t);
    }
  }

  @Test
  void parsesFaultsEvenWithParenthesesInTheCommandName() {
    String stat = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 1500 0 25 0 3 4 0 0 20 0 8 0";
    assertEquals(1525, ProcStat.parseFaults(stat));
    assertTrue(ProcStat.faults(ProcStat.SELF) > 0);
  }

  @Test
  void samplerSeesPageFaultsAndReportsItsSources() throws Exception {
    try (Signals s = Signals.start(SignalSource.fixed(3), Duration.ofMillis(5))) {
      assertTrue(s.awaitSamples(3, Duration.ofSeconds(5)));
      assertTrue(s.llcPressure() > 0, "llc " + s.llcPressure());
      assertTrue(s.describe().contains("llc_pressure: " + s.llcSource()), s.describe());
      assertTrue(s.describe().contains("/proc/self/stat"), s.describe());
      // Touch 256 MiB of fresh memory: ~65k minor faults spread over the next samples.
      double peak = 0;
      try (Arena a = Arena.ofConfined()) {
        MemorySegment m = a.allocate(256L << 20, 4096);
        long deadline = System.nanoTime() + 2_000_000_000L;
        for (long off = 0; off < m.byteSize() && System.nanoTime() < deadline; off += 4096) {
          m.set(java.lang.foreign.ValueLayout.JAVA_BYTE, off, (byte) 1);
          if ((off & ((8 << 20) - 1)) == 0) {
            peak = Math.max(peak, s.pageFaultRate());
            Thread.sleep(1);
          }
        }
        s.awaitSamples(2, Duration.ofSeconds(2));
        peak = Math.max(peak, s.pageFaultRate());
      }
      assertTrue(peak > 10, "page faults per ms while touching fresh memory: " + peak);
      assertEquals(3, s.activeStreams());
      CallFeatures f = s.features(4096, 0);
      assertEquals(4096, f.payloadBytes());
      assertEquals(3, f.activeStreams());
    }
  }

  @Test
  void fixedSignalsAndHogCleanUp() {
    try (Signals s = Signals.fixed(2.5, 123, SignalSource.fixed(1))) {
      assertEquals(Signals.LlcSource.FIXED, s.llcSource());
      assertEquals(2.5, s.pageFaultRate());
      s.set(1, 2);
      assertEquals(2, s.llcPressure());
    }
    try (BandwidthHog hog = new BandwidthHog(1, 16 << 20)) {
      assertEquals(1, hog.threads());
    } // closed: @AfterEach checks the thread is gone
  }
}
