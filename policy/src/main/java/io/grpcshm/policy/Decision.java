package io.grpcshm.policy;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverChoice;
import io.grpcshm.dsa.MoverKind;

/**
 * What the policy chose for one call: the online knobs (mover, cache injection) and the
 * deployment-time mode hint (thesis §5.4.3: the mode is reported, never switched per call).
 *
 * @param mover the data mover to use
 * @param cacheInjection whether to ask the mover for cache injection (only ever true for a
 *     mover that really honours it)
 * @param modeHint the execution mode with the lowest predicted latency for this context
 * @param predictedMicros predicted latency per message of the chosen configuration under the
 *     deployment mode, µs; NaN when the fallback rule decided
 * @param basis how the decision was made
 * @param reason empty for model decisions; for a fallback, why the model was not used
 */
public record Decision(MoverKind mover, boolean cacheInjection, Mode modeHint,
    double predictedMicros, Basis basis, String reason) implements MoverChoice {

  /** How a decision was made. */
  public enum Basis {
    /** argmin of the model's predictions over this host's candidates. */
    MODEL,
    /** the documented size-threshold rule (no model, or unusable input). */
    FALLBACK
  }

  /** {@code model} or {@code fallback}. */
  @Override
  public String basisLabel() {
    return basis == Basis.MODEL ? "model" : "fallback";
  }

  /** Short label such as {@code software}, {@code cpu}, {@code dsa+inject}. */
  public String label() {
    return Candidate.label(mover, cacheInjection);
  }
}
