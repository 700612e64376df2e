package io.grpcshm.policy.internal;

import java.util.SplittableRandom;

/**
 * The measured LLC-pressure proxy: nanoseconds per dependent load of a random pointer chase
 * through a buffer larger than L2 and much smaller than LLC. When co-runners stream through
 * memory they evict it and eat bandwidth, and each load gets slower. A random cyclic
 * permutation (Sattolo) defeats the prefetchers, so the time is latency, not bandwidth.
 */
public final class LlcProbe {
  private final int[] next;
  private final int loads;
  private int pos;
  private int sink;

  public LlcProbe(int bufferBytes, int loads, long seed) {
    int n = Math.max(1024, bufferBytes / 64); // one slot per cache line
    int stride = 16; // ints per 64-byte line
    int[] order = new int[n];
    for (int k = 0; k < n; k++) {
      order[k] = k;
    }
    SplittableRandom rnd = new SplittableRandom(seed);
    for (int k = n - 1; k > 0; k--) { // Sattolo: a single cycle through every line
      int j = rnd.nextInt(k);
      int t = order[k];
      order[k] = order[j];
      order[j] = t;
    }
    next = new int[n * stride];
    for (int k = 0; k < n; k++) {
      next[order[k] * stride] = order[(k + 1) % n] * stride;
    }
    this.loads = loads;
  }

  /** Runs the chase once; ns per load. */
  public double sample() {
    int p = pos;
    long t0 = System.nanoTime();
    for (int k = 0; k < loads; k++) {
      p = next[p];
    }
    long t1 = System.nanoTime();
    pos = p;
    sink += p;
    return (t1 - t0) / (double) loads;
  }

  /** Keeps the chase from being optimised away. */
  public int sink() { return sink; }
}
