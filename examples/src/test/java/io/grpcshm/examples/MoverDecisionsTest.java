package io.grpcshm.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpcshm.MoveEvent;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pipeline's "mover" column. */
class MoverDecisionsTest {
  private static MoveEvent event(MoverKind mover, Mode mode, boolean ci, String basis,
      double predicted, double observed, boolean fallback, String note) {
    return new MoveEvent("p.S/M", 1 << 20, mover, ci, mode, basis, predicted, observed, fallback,
        note);
  }

  @Test
  void noMovesIsADash() {
    assertEquals("-", MoverDecisions.describe(List.of()));
  }

  @Test
  void oneMoveShowsMoverModeCacheInjectionAndCosts() {
    assertEquals("SOFTWARE async+ci 812/790 us", MoverDecisions.describe(List.of(
        event(MoverKind.SOFTWARE, Mode.ASYNC, true, "model", 812.4, 789.6, false, ""))));
    assertEquals("CPU sync -/12 us (threshold)", MoverDecisions.describe(List.of(
        event(MoverKind.CPU, Mode.SYNC, false, "threshold", Double.NaN, 12, false, ""))));
    assertEquals("DSA->CPU pipelined 50/300 us", MoverDecisions.describe(List.of(
        event(MoverKind.DSA, Mode.PIPELINED, false, "model", 50, 300, true, "device gone"))));
  }

  @Test
  void severalMovesAreSummedOrListed() {
    MoveEvent cpu = event(MoverKind.CPU, Mode.SYNC, false, "model", 10, 20, false, "");
    MoveEvent sw = event(MoverKind.SOFTWARE, Mode.SYNC, false, "model", 100, 200, false, "");

    assertEquals("CPU sync x2 20/40 us", MoverDecisions.describe(List.of(cpu, cpu)));
    assertEquals("CPU+SOFTWARE 120/240 us", MoverDecisions.describe(List.of(cpu, sw, cpu)));
  }

  @Test
  void eventsBelongToTheCallTheyHappenedInAndNotesAreKept() {
    MoverDecisions decisions = new MoverDecisions();
    decisions.startCall();
    decisions.record(event(MoverKind.DSA, Mode.SYNC, false, "model", 5, 6, true, "queue full"));
    assertEquals("DSA->CPU sync 5/6 us", decisions.describeCall());

    decisions.startCall();
    assertEquals("-", decisions.describeCall());
    decisions.record(event(MoverKind.CPU, Mode.SYNC, false, "fallback", 1, 2, false,
        "no model for this host"));
    assertEquals("CPU sync 1/2 us (fallback)", decisions.describeCall());
    assertEquals(List.of("CPU: no model for this host", "DSA->CPU: queue full"),
        decisions.notes());
  }

  /**
   * The summary puts the first call of a size (it faults the fresh shared-memory segment in)
   * apart from the later ones, whose median is set against the prediction.
   */
  @Test
  void summaryShowsTheFirstCallApartFromTheWarmOnes() {
    List<Pipeline.CallRecord> calls = new java.util.ArrayList<>();
    double[] observed = {300_000, 14_000, 7_000, 12_000, 10_000};
    for (double obs : observed) {
      List<MoveEvent> moves = List.of(event(MoverKind.PARALLEL, Mode.SYNC, false, "model",
          24_000, obs, false, ""));
      calls.add(new Pipeline.CallRecord(2, 199, 119_800_000, "shm",
          io.grpcshm.TransportPath.SHARED_MEMORY, MoverDecisions.describe(moves),
          MoverDecisions.predictedMicros(moves), MoverDecisions.observedMicros(moves), 1, 1, true,
          null));
    }
    assertEquals("119.8 MB PARALLEL sync: predicted 24000 us; copy observed 300000 us on the"
        + " first call, 12000 us median of the 4 later (7000-14000): predicted/observed 2.00x",
        Pipeline.moverSummary(calls));
    assertEquals("119.8 MB PARALLEL sync: predicted 24000 us; copy observed 300000 us on the"
        + " first call", Pipeline.moverSummary(calls.subList(0, 1)));
    assertEquals(Double.NaN, MoverDecisions.predictedMicros(List.of()));
  }
}
