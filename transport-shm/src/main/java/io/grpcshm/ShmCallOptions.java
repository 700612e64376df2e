package io.grpcshm;

import io.grpc.CallOptions;
import io.grpcshm.dsa.Mode;

/** Per-call settings of grpc-shm, set with {@code stub.withOption(key, value)}. */
public final class ShmCallOptions {
  private ShmCallOptions() {}

  /** The data movers' execution mode for this call's large off-heap payloads. */
  public static final CallOptions.Key<Mode> MOVER_MODE = CallOptions.Key.create("grpc-shm.moverMode");

  /**
   * The policy's reuse-window hint: after how many calls the application sends the same buffer
   * again (absent: unknown). Cached destinations favour cache injection.
   */
  public static final CallOptions.Key<Integer> REUSE_WINDOW =
      CallOptions.Key.create("grpc-shm.reuseWindow");
}
