package io.grpcshm.policy;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.util.Locale;

/**
 * One configuration the profiler measures and the model scores: mover × cache injection × mode.
 * Cache injection is a separate candidate only for a mover that honours it (DSA with cache
 * control); on the CPU and the software engine the flag changes nothing, so they have one.
 */
public record Candidate(MoverKind mover, boolean cacheInjection, Mode mode) {
  public Candidate {
    if (cacheInjection && mover != MoverKind.DSA) {
      throw new IllegalArgumentException(mover + " has no cache injection");
    }
  }

  /** e.g. {@code sync_cpu}, {@code async_software}, {@code pipelined_dsa+inject}. */
  public String label() {
    return mode.name().toLowerCase(Locale.ROOT) + "_" + label(mover, cacheInjection);
  }

  static String label(MoverKind mover, boolean inject) {
    String m = mover.name().toLowerCase(Locale.ROOT);
    return mover == MoverKind.DSA ? m + (inject ? "+inject" : "+bypass") : m;
  }
}
