package io.grpcshm.dsa;

import java.util.ArrayList;
import java.util.List;

/** {@link MoverPolicy#breakEven}: the argmin of the movers' calibrated latency lines. */
final class BreakEvenPolicy implements MoverPolicy {
  private record Choice(MoverKind mover, double predictedMicros, String reason)
      implements MoverChoice {
    @Override
    public boolean cacheInjection() { return false; }

    @Override
    public String basisLabel() { return "rule"; }
  }

  private final MoverKind[] kinds;
  private final Calibration[] lines;
  private final Choice cpuAlways;
  private final String description;

  BreakEvenPolicy(MoverRegistry registry, String why) {
    List<MoverKind> k = new ArrayList<>();
    List<Calibration> l = new ArrayList<>();
    StringBuilder d = new StringBuilder("built-in break-even rule");
    Calibration cpu = registry.get(MoverKind.CPU).calibration();
    if (usable(cpu)) {
      for (DataMover m : registry.movers()) {
        if (m.isAvailable() && usable(m.calibration())) {
          k.add(m.kind());
          l.add(m.calibration());
          if (m.kind() != MoverKind.CPU) {
            long at = m.calibration().breakEvenBytes(cpu);
            d.append(", ").append(m.kind()).append(at < 0 ? " never" : " from " + at + " B");
          }
        }
      }
    } else {
      d.append(": CPU only (no calibration)");
    }
    if (!why.isEmpty()) {
      d.append(" (").append(why).append(')');
    }
    this.kinds = k.toArray(MoverKind[]::new);
    this.lines = l.toArray(Calibration[]::new);
    this.cpuAlways = new Choice(MoverKind.CPU, Double.NaN, "");
    this.description = d.toString();
  }

  private static boolean usable(Calibration c) {
    return c.nanosPerByte() > 0;
  }

  @Override
  public MoverChoice choose(long bytes, int reuseWindow, Mode mode) {
    if (kinds.length == 0) {
      return cpuAlways;
    }
    int best = 0;
    long bestNanos = lines[0].predictNanos(bytes);
    for (int i = 1; i < kinds.length; i++) {
      long n = lines[i].predictNanos(bytes);
      // Ties go to the earlier kind (CPU is first): a mover must be faster to be worth it.
      if (n < bestNanos) {
        best = i;
        bestNanos = n;
      }
    }
    return new Choice(kinds[best], bestNanos / 1000.0, "");
  }

  @Override
  public String describe() {
    return description;
  }
}
