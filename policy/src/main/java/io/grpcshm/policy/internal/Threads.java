package io.grpcshm.policy.internal;

import java.util.List;

/** Joining the load threads the profiler starts (bandwidth hogs, extra clients). */
public final class Threads {
  private Threads() {}

  /**
   * Waits for every thread to end, even if interrupted meanwhile; returns whether an interrupt
   * arrived, so the caller can release its resources first and then restore the flag.
   */
  public static boolean joinAll(List<Thread> threads) {
    boolean interrupted = false;
    for (Thread t : threads) {
      while (t.isAlive()) {
        try {
          t.join();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
    }
    return interrupted;
  }
}
