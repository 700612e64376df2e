package io.grpcshm;

import io.grpc.Internal;

/**
 * Hooks for grpc's own test suites (census stats toggles, as grpc's Netty builders offer through
 * their {@code Internal*} classes). Not part of the supported API.
 */
@Internal
public final class InternalShm {
  private InternalShm() {}

  /** Turns grpc's default census stats on or off on both paths of a channel. */
  public static void setStatsEnabled(ShmChannelBuilder builder, boolean enabled) {
    builder.setStatsEnabledInternal(enabled);
  }

  /** Turns grpc's default census stats on or off on both servers. */
  public static void setStatsEnabled(ShmServerBuilder builder, boolean enabled) {
    builder.setStatsEnabledInternal(enabled);
  }
}
