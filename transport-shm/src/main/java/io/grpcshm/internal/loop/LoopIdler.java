package io.grpcshm.internal.loop;

import io.grpcshm.IdleStrategy;

/**
 * One loop's idle state under an {@link IdleStrategy}, in Agrona's {@code idle(workCount)} shape:
 * the loop reports the work of each turn; without work it spins, then yields, and once both
 * phases are spent {@link #idle} says it is time to sleep (the loop parks its members and waits in
 * epoll, which is the loop's own business). Loop thread only.
 */
final class LoopIdler {
  private final long spinNanos;
  private final long spinAndYieldNanos;
  /** When the current run of empty turns began; 0 while working. */
  private long idleSince;

  LoopIdler(IdleStrategy strategy) {
    this.spinNanos = strategy.spinNanos();
    this.spinAndYieldNanos = saturatedAdd(strategy.spinNanos(), strategy.yieldNanos());
  }

  /**
   * After a turn that did {@code workCount} units of work at {@code nowNanos}: true if the loop
   * should poll again (it worked, or has spun or yielded once), false once it should sleep.
   */
  boolean idle(int workCount, long nowNanos) {
    if (workCount > 0) {
      idleSince = 0;
      return true;
    }
    if (idleSince == 0) {
      idleSince = nowNanos;
    }
    long idleFor = nowNanos - idleSince;
    if (idleFor < spinNanos) {
      Thread.onSpinWait();
      return true;
    }
    if (idleFor < spinAndYieldNanos) {
      Thread.yield();
      return true;
    }
    return false;
  }

  /** The loop slept and woke: the next empty turn starts a new spin. */
  void reset() {
    idleSince = 0;
  }

  private static long saturatedAdd(long a, long b) {
    long sum = a + b;
    return sum < 0 ? Long.MAX_VALUE : sum;
  }
}
