package io.grpcshm.internal.movement;

import io.grpc.CallOptions;
import io.grpcshm.DataMovement;
import io.grpcshm.ShmCallOptions;
import io.grpcshm.dsa.Mode;
import io.grpcshm.policy.CallFeatures;

/**
 * The data-movement settings of one stream.
 *
 * @param callMode the call's {@link ShmCallOptions#MOVER_MODE}, or null
 * @param reuseWindow the call's reuse hint or {@link CallFeatures#REUSE_UNKNOWN}
 */
public record MoveContext(String method, DataMovement movement, Mode callMode, int reuseWindow) {
  public static MoveContext client(String method, DataMovement movement, CallOptions options) {
    Integer reuse = options.getOption(ShmCallOptions.REUSE_WINDOW);
    return new MoveContext(method, movement, options.getOption(ShmCallOptions.MOVER_MODE),
        reuse == null || reuse < 0 ? CallFeatures.REUSE_UNKNOWN : reuse);
  }

  public static MoveContext server(String method, DataMovement movement) {
    return new MoveContext(method, movement, null, CallFeatures.REUSE_UNKNOWN);
  }
}
