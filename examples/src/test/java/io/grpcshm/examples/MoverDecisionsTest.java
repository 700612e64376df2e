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

  /** A line of 1 µs fixed + 1 µs per KiB for every mover; 2x that for the CPU. */
  private static final MoverDecisions.CopyLine LINE =
      (mover, bytes) -> (mover == MoverKind.CPU ? 2 : 1) * (1 + bytes / 1024.0);

  @Test
  void noMovesIsADash() {
    assertEquals("-", MoverDecisions.describe(List.of(), LINE));
  }

  @Test
  void oneMoveShowsMoverModeCacheInjectionAndTheCopysPredictedAndObservedCost() {
    assertEquals("SOFTWARE async+ci 1025/790 us", MoverDecisions.describe(List.of(
        event(MoverKind.SOFTWARE, Mode.ASYNC, true, "model", 812.4, 789.6, false, "")), LINE));
    assertEquals("CPU sync 2050/12 us (threshold)", MoverDecisions.describe(List.of(
        event(MoverKind.CPU, Mode.SYNC, false, "threshold", Double.NaN, 12, false, "")), LINE));
    // The CPU copied instead of the chosen mover: the CPU's line.
    assertEquals("DSA->CPU pipelined 2050/300 us", MoverDecisions.describe(List.of(
        event(MoverKind.DSA, Mode.PIPELINED, false, "model", 50, 300, true, "device gone")),
        LINE));
    // While the movers are being opened there is no line yet.
    assertEquals("CPU sync -/7 us (warm-up)", MoverDecisions.describe(List.of(
        event(MoverKind.CPU, Mode.SYNC, false, "warm-up", Double.NaN, 7, false, "")), LINE));
    assertEquals("PARALLEL sync -/7 us", MoverDecisions.describe(List.of(
        event(MoverKind.PARALLEL, Mode.SYNC, false, "model", 9, 7, false, "")),
        (mover, bytes) -> Double.NaN));
  }

  /** What the policy expected before the copy is the prediction; the line only stands in. */
  @Test
  void thePolicysExpectationBeforeTheCopyIsThePrediction() {
    MoveEvent expected = new MoveEvent("p.S/M", 1 << 20, MoverKind.PARALLEL, false, Mode.SYNC,
        "model", 9, 700, false, "", 640);
    assertEquals("PARALLEL sync 640/700 us", MoverDecisions.describe(List.of(expected), LINE));
    assertEquals(640, MoverDecisions.copyPredictedMicros(List.of(expected), LINE), 1e-9);
    // The CPU copied instead: no expectation, so the CPU's line.
    MoveEvent fellBack = new MoveEvent("p.S/M", 1 << 20, MoverKind.PARALLEL, false, Mode.SYNC,
        "model", 9, 700, true, "refused", Double.NaN);
    assertEquals(640 + 2050, MoverDecisions.copyPredictedMicros(List.of(expected, fellBack),
        LINE), 1e-9);
  }

  @Test
  void severalMovesAreSummedOrListed() {
    MoveEvent cpu = event(MoverKind.CPU, Mode.SYNC, false, "model", 10, 20, false, "");
    MoveEvent sw = event(MoverKind.SOFTWARE, Mode.SYNC, false, "model", 100, 200, false, "");

    assertEquals("CPU sync x2 4100/40 us", MoverDecisions.describe(List.of(cpu, cpu), LINE));
    assertEquals("CPU+SOFTWARE 5125/240 us", MoverDecisions.describe(List.of(cpu, sw, cpu),
        LINE));
    assertEquals(120, MoverDecisions.messagePredictedMicros(List.of(cpu, sw, cpu)), 1e-9);
  }

  @Test
  void eventsBelongToTheCallTheyHappenedInAndNotesAreKept() {
    MoverDecisions decisions = new MoverDecisions(LINE);
    decisions.startCall();
    decisions.record(event(MoverKind.DSA, Mode.SYNC, false, "model", 5, 6, true, "queue full"));
    assertEquals("DSA->CPU sync 2050/6 us", decisions.describeCall());

    decisions.startCall();
    assertEquals("-", decisions.describeCall());
    decisions.record(event(MoverKind.CPU, Mode.SYNC, false, "fallback", 1, 2, false,
        "no model for this host"));
    assertEquals("CPU sync 2050/2 us (fallback)", decisions.describeCall());
    assertEquals(List.of("CPU: no model for this host", "DSA->CPU: queue full"),
        decisions.notes());
    decisions.record(event(MoverKind.PARALLEL, Mode.SYNC, false, "warm-up", 1, 2, false, ""));
    assertEquals(List.of("CPU 2.0 us + 2048.00 us/MiB"), decisions.lines(),
        "the CPU copied both moves; the warm-up move says nothing of the PARALLEL line");
  }

  /**
   * The summary puts the first call of a size (it faults the fresh shared-memory segment in)
   * apart from the later ones, each of whose predicted copy is set against its own observed one;
   * the policy's prediction of the whole message is shown apart.
   */
  @Test
  void summaryShowsTheFirstCallApartFromTheWarmOnes() {
    List<Pipeline.CallRecord> calls = new java.util.ArrayList<>();
    double[] observed = {300_000, 14_000, 7_000, 12_000, 10_000};
    MoverDecisions.CopyLine line = (mover, bytes) -> 4_000;
    for (double obs : observed) {
      List<MoveEvent> moves = List.of(event(MoverKind.PARALLEL, Mode.SYNC, false, "model",
          24_000, obs, false, ""));
      calls.add(new Pipeline.CallRecord(2, 199, 119_800_000, "shm",
          io.grpcshm.TransportPath.SHARED_MEMORY, MoverDecisions.describe(moves, line),
          MoverDecisions.copyPredictedMicros(moves, line),
          MoverDecisions.messagePredictedMicros(moves), MoverDecisions.observedMicros(moves), 1,
          1, true, null));
    }
    assertEquals("119.8 MB PARALLEL sync: copy predicted 4000 us, observed 300000 us on the"
        + " first call, 12000 us median of the 4 later (7000-14000): predicted/observed 0.37x"
        + " median (0.29-0.57); the policy's cost of the message (producing it + the copy)"
        + " 24000 us",
        Pipeline.moverSummary(calls));
    assertEquals("119.8 MB PARALLEL sync: copy predicted 4000 us, observed 300000 us on the"
        + " first call; the policy's cost of the message (producing it + the copy) 24000 us",
        Pipeline.moverSummary(calls.subList(0, 1)));
    assertEquals(Double.NaN, MoverDecisions.messagePredictedMicros(List.of()));
    assertEquals(Double.NaN, MoverDecisions.copyPredictedMicros(List.of(), line));
  }
}
