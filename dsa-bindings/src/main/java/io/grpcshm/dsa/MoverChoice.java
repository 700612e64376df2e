package io.grpcshm.dsa;

/** What a {@link MoverPolicy} chose for one move. */
public interface MoverChoice {
  MoverKind mover();

  /** Whether to ask the mover to leave the data in the cache. */
  boolean cacheInjection();

  /** The policy's predicted latency of the move, µs; NaN without a prediction. */
  double predictedMicros();

  /** How the mover was chosen, as traces show it: e.g. {@code model}, {@code fallback}. */
  String basisLabel();

  /** Empty, or why the policy decided as it did (e.g. why it did not use its model). */
  String reason();
}
