package io.grpcshm;

/**
 * Observes every data-mover decision of a {@link DataMovement} configuration. Called on the
 * sending thread after the move completed, so keep it cheap; exceptions are logged and ignored.
 */
@FunctionalInterface
public interface MoveTracer {
  void onMove(MoveEvent event);
}
