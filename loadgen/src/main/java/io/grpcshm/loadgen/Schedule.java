package io.grpcshm.loadgen;

/**
 * A value over time as ghz's load and concurrency schedules define it: {@code const} keeps
 * {@code start}; {@code step} changes by {@code step} every {@code stepNanos}; {@code line} is a
 * step schedule with 1 s steps (ghz's linear pacer). Adjustment stops once {@code end} is reached
 * (values past it are clamped to it) or {@code maxNanos} has elapsed, whichever comes first; the
 * value then stays. Values are piecewise constant, so the calls due by time t (for a rate) have a
 * closed form per step, which {@link #dueNanos} inverts.
 */
record Schedule(String kind, double start, double step, long stepNanos, Double end,
    long maxNanos) {

  static final long NEVER = Long.MAX_VALUE;

  static Schedule constant(double value) {
    return new Schedule("const", value, 0, NEVER, null, 0);
  }

  boolean isConstant() {
    return kind.equals("const");
  }

  /**
   * Index of the step from which the value no longer changes: the step where it reaches
   * {@code end} or the one running at {@code maxNanos}; {@link #NEVER} when it changes forever.
   */
  long lastStep() {
    if (isConstant()) {
      return 0;
    }
    long last = NEVER;
    if (end != null) {
      last = (long) Math.ceil((end - start) / step);
    }
    if (maxNanos > 0) {
      last = Math.min(last, maxNanos / stepNanos);
    }
    return last;
  }

  /** The value during step i (clamped to end, frozen after the last step). */
  double valueOfStep(long i) {
    double v = start + step * Math.min(i, lastStep());
    if (end != null) {
      v = step > 0 ? Math.min(v, end) : Math.max(v, end);
    }
    return v;
  }

  long stepAt(long nanos) {
    return isConstant() ? 0 : Math.min(nanos / stepNanos, lastStep());
  }

  double valueAt(long nanos) {
    return valueOfStep(stepAt(nanos));
  }

  long stepStartNanos(long i) {
    return i == 0 ? 0 : i * stepNanos;
  }

  /** When the value next changes after {@code nanos}; {@link #NEVER} if it does not. */
  long nextChangeAfter(long nanos) {
    long i = stepAt(nanos);
    return i >= lastStep() ? NEVER : (i + 1) * stepNanos;
  }

  /** Calls due before the start of step i (i ≤ lastStep), for a rate schedule. */
  private double dueBeforeStep(long i) {
    // Steps 0..i-1 are below the last step, so unclamped: sum of start + step*j for j < i.
    return stepNanos / 1e9 * (i * start + step * ((double) i * (i - 1) / 2));
  }

  /** The time (since the run's start) at which call k (0-based) is due at this rate. */
  long dueNanos(long k) {
    if (isConstant()) {
      return (long) (k * 1e9 / start);
    }
    long last = lastStep();
    long lo = 0;
    long hi;
    if (last != NEVER) {
      if (k >= dueBeforeStep(last)) {
        return stepStartNanos(last) + (long) ((k - dueBeforeStep(last)) * 1e9 / valueOfStep(last));
      }
      hi = last;
    } else {
      hi = 1;
      while (dueBeforeStep(hi) <= k) {
        hi *= 2;
      }
    }
    // Largest step i < hi whose start has at most k calls due before it.
    while (hi - lo > 1) {
      long mid = (lo + hi) >>> 1;
      if (dueBeforeStep(mid) <= k) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return stepStartNanos(lo) + (long) ((k - dueBeforeStep(lo)) * 1e9 / valueOfStep(lo));
  }

  /** A short text for reports: "step 50→150 by 10 every 5s". */
  String describe(String unit) {
    if (isConstant()) {
      return "const " + Report.number(start) + unit;
    }
    StringBuilder sb = new StringBuilder(kind).append(' ').append(Report.number(start));
    if (end != null) {
      sb.append("→").append(Report.number(end));
    }
    sb.append(unit).append(" by ").append(Report.number(step)).append(" every ")
        .append(Report.duration(stepNanos));
    if (maxNanos > 0) {
      sb.append(", adjusting for at most ").append(Report.duration(maxNanos));
    }
    return sb.toString();
  }
}
