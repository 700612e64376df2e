package io.grpcshm.examples;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The hand-off figure SmallCallBenchmark prints beside its table. */
class HandOffCostTest {
  @Test
  void twoThreadsTakeTurnsToTheEndAndReportCpuPerHandOff() {
    // Odd and even counts end on different threads; a lost wake-up would hang here, and the
    // benchmark with it.
    for (int handOffs : new int[] {2, 3, 2_001}) {
      double micros = assertTimeoutPreemptively(Duration.ofSeconds(60),
          () -> HandOffCost.cpuMicrosPerHandOff(handOffs));
      assertTrue(Double.isFinite(micros) && micros >= 0, handOffs + ": " + micros);
    }
  }

  @Test
  void fewerThanTwoHandOffsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> HandOffCost.cpuMicrosPerHandOff(1));
  }
}
