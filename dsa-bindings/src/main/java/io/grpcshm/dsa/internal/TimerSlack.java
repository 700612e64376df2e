package io.grpcshm.dsa.internal;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Per-thread timer slack (prctl PR_SET_TIMERSLACK). Linux rounds every sleep of a normal thread
 * up by its slack (50 µs by default), so a 10 µs parkNanos would really sleep ~60 µs; lowering
 * it is what makes the hybrid wait's short sleeps real. The setting applies to the calling OS
 * thread only (for a virtual thread: its current carrier).
 */
public final class TimerSlack {
  private static final Logger LOG = Logger.getLogger(TimerSlack.class.getName());
  /** 1 ns would be legal but 1 µs is plenty below our shortest sleeps. */
  public static final long DEFAULT_SLACK_NANOS = 1_000;
  private static final ThreadLocal<Boolean> LOWERED = new ThreadLocal<>();
  private static volatile boolean warned;

  private TimerSlack() {}

  /** Current slack of this thread in ns, or -1 if unknown. */
  public static long current() {
    if (!Libc.available()) {
      return -1;
    }
    long r = Libc.prctl(Libc.PR_GET_TIMERSLACK, 0);
    return r;
  }

  /** Sets this thread's slack; returns true on success. Logs once on failure. */
  public static boolean set(long nanos) {
    if (!Libc.available()) {
      warnOnce(Libc.unavailableReason());
      return false;
    }
    long r = Libc.prctl(Libc.PR_SET_TIMERSLACK, nanos);
    if (r < 0) {
      warnOnce("prctl(PR_SET_TIMERSLACK) failed: " + Libc.strerror((int) -r));
      return false;
    }
    return true;
  }

  /** Lowers this thread's slack once; cheap (a ThreadLocal read) on later calls. */
  public static void ensureLowered() {
    if (LOWERED.get() == null) {
      set(DEFAULT_SLACK_NANOS);
      LOWERED.set(Boolean.TRUE);
    }
  }

  private static void warnOnce(String why) {
    if (!warned) {
      warned = true;
      LOG.log(Level.WARNING, "cannot lower timer slack, short sleeps will overshoot: {0}", why);
    }
  }
}
