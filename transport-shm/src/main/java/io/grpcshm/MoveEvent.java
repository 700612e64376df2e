package io.grpcshm;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;

/**
 * One payload moved into shared memory.
 *
 * @param method full method name of the call ({@code pkg.Service/Method})
 * @param bytes payload bytes moved
 * @param mover the mover that was chosen (the copy itself ran on the CPU if
 *     {@link #cpuFallback})
 * @param cacheInjection whether the mover was asked to leave the data in the cache
 * @param mode the execution mode the move ran in
 * @param basis how the mover was chosen: {@code model}, {@code fallback} (the learned policy's
 *     size-threshold rule, see {@link #note}), {@code rule} (the built-in break-even rule, used
 *     when the learned policy is not on the class path; other {@link
 *     io.grpcshm.dsa.MoverPolicy} implementations name their own), {@code fixed}
 *     ({@link DataMovement#withFixedMover})
 *     or {@code heap} (a heap payload written by grpc's framer: always the CPU, since no engine
 *     can read the Java heap), or {@code warm-up} (CPU while the default movers are opened in
 *     the background, about a second after the first large payload)
 * @param predictedMicros the policy's predicted latency, µs; NaN without a model prediction
 * @param observedMicros decision to completion as seen by the sender, µs (for async and
 *     pipelined moves this includes the work the sender overlapped with the move)
 * @param cpuFallback the chosen mover was unavailable, refused or failed the copy, and the CPU
 *     copied the payload instead (nothing is lost: the whole range is copied again)
 * @param note empty, or what went differently (why the CPU copied; why the policy used its
 *     fallback rule)
 * @param expectedCopyMicros what the policy expected the copy alone to cost, asked before the
 *     copy ({@link io.grpcshm.dsa.MoverPolicy#expectedCopyMicros}; the learned policy's is the
 *     mover's line on this host scaled by its recent copies), µs; NaN when it gave none
 */
public record MoveEvent(String method, long bytes, MoverKind mover, boolean cacheInjection,
    Mode mode, String basis, double predictedMicros, double observedMicros, boolean cpuFallback,
    String note, double expectedCopyMicros) {

  /** An event without an expected copy cost. */
  public MoveEvent(String method, long bytes, MoverKind mover, boolean cacheInjection, Mode mode,
      String basis, double predictedMicros, double observedMicros, boolean cpuFallback,
      String note) {
    this(method, bytes, mover, cacheInjection, mode, basis, predictedMicros, observedMicros,
        cpuFallback, note, Double.NaN);
  }
}
