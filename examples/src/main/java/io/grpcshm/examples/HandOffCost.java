package io.grpcshm.examples;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * What one thread hand-off costs on this host: a thread unparks another that is parked, and that
 * one runs. A blocking gRPC call pays at least one in its client JVM (the caller parks until a
 * transport thread hands it the response), whatever the transport, so this figure is a floor
 * under the client CPU per call that {@link SmallCallBenchmark} reports. It varies a lot between
 * hosts: a virtual machine whose wake-ups trap to the hypervisor pays several times what bare
 * metal does.
 *
 * <p>Two threads take turns; each parks until the other hands it the turn. The figure is the CPU
 * time of both threads (user and kernel, as the JVM reports per thread) divided by the number of
 * hand-offs.
 */
final class HandOffCost {
  private HandOffCost() {}

  /** Microseconds of CPU per hand-off, measured over {@code handOffs} after a warm-up. */
  static double cpuMicrosPerHandOff(int handOffs) throws InterruptedException {
    if (handOffs < 2) {
      throw new IllegalArgumentException("handOffs must be at least 2: " + handOffs);
    }
    run(Math.max(2, handOffs / 5));
    long[] cpuNanos = run(handOffs);
    return (cpuNanos[0] + cpuNanos[1]) / 1e3 / handOffs;
  }

  /** Runs {@code handOffs} hand-offs and returns each thread's CPU time over them. */
  private static long[] run(int handOffs) throws InterruptedException {
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    AtomicLong turn = new AtomicLong();
    long[] cpuNanos = new long[2];
    Thread[] pair = new Thread[2];
    for (int i = 0; i < 2; i++) {
      int me = i;
      pair[i] = new Thread(() -> {
        long start = threads.getCurrentThreadCpuTime();
        // Turn t belongs to thread t % 2; each thread takes every other turn.
        for (long t = me; t < handOffs; t += 2) {
          while (turn.get() != t) {
            LockSupport.park(turn);
          }
          turn.set(t + 1);
          LockSupport.unpark(pair[1 - me]);
        }
        cpuNanos[me] = threads.getCurrentThreadCpuTime() - start;
      }, "hand-off-" + i);
      pair[i].setDaemon(true);
    }
    pair[0].start();
    pair[1].start();
    pair[0].join();
    pair[1].join();
    return cpuNanos;
  }
}
