package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.ArmedFaults;

/** A registry whose software engine fails where the test arms it (for tests of other modules). */
public final class FaultyMovers {
  private FaultyMovers() {}

  /** Opens a registry with {@code options} whose software engine consults {@code faults}. */
  public static MoverRegistry open(MoverRegistry.Options options, ArmedFaults faults) {
    return MoverRegistry.open(options.softwareFaults(faults));
  }
}
