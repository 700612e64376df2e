package io.grpcshm.dsa;

import java.util.Locale;

/**
 * How a caller uses a mover (Rocket's execution modes). The mode is a deployment choice, not a
 * per-copy one; {@link MoverSession} implements each.
 */
public enum Mode {
  /** Submit and wait: lowest latency for the one copy, no overlap. */
  SYNC,
  /** Submit, keep working, collect completions later (in order). */
  ASYNC,
  /** Accumulate copies into batches, submit a batch at a time, check completions lazily. */
  PIPELINED;

  /** Parses "sync", "async", "pipelined" (or "pipeline"), case-insensitively. */
  public static Mode parse(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT);
    return "PIPELINE".equals(t) ? PIPELINED : valueOf(t);
  }
}
