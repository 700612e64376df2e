package io.grpcshm.policy.internal;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.util.List;

/**
 * The model's input vector, in one place: names, order, encodings. The trainer, the artifact
 * check, the profiler's CSV and the runtime all use these indexes, so a model trained on another
 * layout is rejected instead of silently mis-read.
 */
public final class Schema {
  private Schema() {}

  public static final int PAYLOAD_BYTES = 0;
  public static final int REUSE_WINDOW = 1;
  public static final int PF_RATE = 2;
  public static final int LLC_PRESSURE = 3;
  public static final int ACTIVE_STREAMS = 4;
  /** Categorical: {@link MoverKind#ordinal()}. */
  public static final int MOVER = 5;
  /** Categorical: 0/1. */
  public static final int CACHE_INJECTION = 6;
  /** Categorical: {@link Mode#ordinal()}. */
  public static final int MODE = 7;
  public static final int WIDTH = 8;

  public static final List<String> FEATURES = List.of("payload_bytes", "reuse_window", "pf_rate",
      "llc_pressure", "active_streams", "mover", "cache_injection", "mode");
  public static final int[] CATEGORICAL = {MOVER, CACHE_INJECTION, MODE};

  /** Bumped whenever the meaning of a feature changes. */
  public static final int FORMAT = 1;

  public static void context(double[] x, double payload, double reuse, double pf, double llc,
      double streams) {
    x[PAYLOAD_BYTES] = payload;
    x[REUSE_WINDOW] = reuse;
    x[PF_RATE] = pf;
    x[LLC_PRESSURE] = llc;
    x[ACTIVE_STREAMS] = streams;
  }

  public static void config(double[] x, MoverKind mover, boolean inject, Mode mode) {
    x[MOVER] = mover.ordinal();
    x[CACHE_INJECTION] = inject ? 1 : 0;
    x[MODE] = mode.ordinal();
  }
}
