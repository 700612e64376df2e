package io.grpcshm.internal.movement;

import io.grpcshm.dsa.MoverKind;
import java.util.concurrent.atomic.LongAdder;

/** Moves, bytes, time and CPU fallbacks per mover of one data-movement configuration. */
public final class MoveCounters {
  private final LongAdder[] moves = adders();
  private final LongAdder[] bytes = adders();
  private final LongAdder[] nanos = adders();
  private final LongAdder[] fallbacks = adders();

  private static LongAdder[] adders() {
    LongAdder[] a = new LongAdder[MoverKind.values().length];
    for (int i = 0; i < a.length; i++) {
      a[i] = new LongAdder();
    }
    return a;
  }

  void add(MoverKind k, long n, long ns, boolean fallback) {
    int i = k.ordinal();
    moves[i].increment();
    bytes[i].add(n);
    nanos[i].add(ns);
    if (fallback) {
      fallbacks[i].increment();
    }
  }

  public long moves(MoverKind k) { return moves[k.ordinal()].sum(); }

  public long bytes(MoverKind k) { return bytes[k.ordinal()].sum(); }

  public long micros(MoverKind k) { return nanos[k.ordinal()].sum() / 1000; }

  public long cpuFallbacks(MoverKind k) { return fallbacks[k.ordinal()].sum(); }
}
