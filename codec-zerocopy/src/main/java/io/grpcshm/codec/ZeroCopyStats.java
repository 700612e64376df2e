package io.grpcshm.codec;

import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of what {@link ZeroCopyMarshaller}s did: how each message was parsed and how each
 * aliased message was given back. Every marshaller has its own counters ({@link
 * ZeroCopyMarshaller#stats()}); {@link #global()} sums all of them, which is what to export when
 * marshallers were created for you by {@link ZeroCopyServices}.
 *
 * <p>A growing {@link #reclaimedByCleaner()} means application code forgets to close
 * {@link ZeroCopyMessage}s: transport memory then stays lent until a garbage collection notices.
 */
public final class ZeroCopyStats {
  private static final ZeroCopyStats GLOBAL = new ZeroCopyStats(null);

  private final ZeroCopyStats parent;
  private final LongAdder aliased = new LongAdder();
  private final LongAdder inPlace = new LongAdder();
  private final LongAdder copied = new LongAdder();
  private final LongAdder passedThrough = new LongAdder();
  private final LongAdder releasedExplicitly = new LongAdder();
  private final LongAdder reclaimedByCleaner = new LongAdder();

  private ZeroCopyStats(ZeroCopyStats parent) {
    this.parent = parent;
  }

  /** Counters summed over every marshaller in this class loader. */
  public static ZeroCopyStats global() {
    return GLOBAL;
  }

  static ZeroCopyStats newChild() {
    return new ZeroCopyStats(GLOBAL);
  }

  /** Messages parsed in place whose byte fields alias transport memory (a lease was taken). */
  public long aliased() {
    return aliased.sum();
  }

  /** Messages parsed straight from a transport buffer without aliasing (nothing held after). */
  public long parsedInPlace() {
    return inPlace.sum();
  }

  /** Messages parsed by ordinary copying (stock transports, small or split messages). */
  public long copied() {
    return copied.sum();
  }

  /** Messages handed over as the same object (in-process transport), neither copied nor parsed. */
  public long passedThrough() {
    return passedThrough.sum();
  }

  /** Aliased messages given back by {@link ZeroCopyMessage#close()}. */
  public long releasedExplicitly() {
    return releasedExplicitly.sum();
  }

  /** Aliased messages given back by the safety net after they became unreachable. */
  public long reclaimedByCleaner() {
    return reclaimedByCleaner.sum();
  }

  /** Aliased messages whose transport memory is still lent to the application. */
  public long outstanding() {
    return aliased() - releasedExplicitly() - reclaimedByCleaner();
  }

  void onAliased() {
    aliased.increment();
    if (parent != null) {
      parent.onAliased();
    }
  }

  void onInPlace() {
    inPlace.increment();
    if (parent != null) {
      parent.onInPlace();
    }
  }

  void onCopied() {
    copied.increment();
    if (parent != null) {
      parent.onCopied();
    }
  }

  void onPassedThrough() {
    passedThrough.increment();
    if (parent != null) {
      parent.onPassedThrough();
    }
  }

  void onReleased(boolean byCleaner) {
    (byCleaner ? reclaimedByCleaner : releasedExplicitly).increment();
    if (parent != null) {
      parent.onReleased(byCleaner);
    }
  }

  @Override
  public String toString() {
    return "ZeroCopyStats{aliased=" + aliased() + ", inPlace=" + parsedInPlace()
        + ", copied=" + copied() + ", passedThrough=" + passedThrough()
        + ", releasedExplicitly=" + releasedExplicitly()
        + ", reclaimedByCleaner=" + reclaimedByCleaner() + "}";
  }
}
