package io.grpcshm.internal.movement;

import io.grpc.CallOptions;
import io.grpcshm.DataMovement;
import io.grpcshm.ShmCallOptions;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverPolicy;

/**
 * The data-movement settings of one stream.
 *
 * @param callMode the call's {@link ShmCallOptions#MOVER_MODE}, or null
 * @param reuseWindow the call's reuse hint or {@link MoverPolicy#REUSE_UNKNOWN}
 */
public record MoveContext(String method, MovementSettings settings, Mode callMode,
    int reuseWindow) {
  public static MoveContext client(String method, DataMovement movement, CallOptions options) {
    Integer reuse = options.getOption(ShmCallOptions.REUSE_WINDOW);
    return new MoveContext(method, movement.settings(),
        options.getOption(ShmCallOptions.MOVER_MODE),
        reuse == null || reuse < 0 ? MoverPolicy.REUSE_UNKNOWN : reuse);
  }

  public static MoveContext server(String method, DataMovement movement) {
    return new MoveContext(method, movement.settings(), null, MoverPolicy.REUSE_UNKNOWN);
  }
}
