package io.grpcshm.internal.movement;

import io.grpcshm.MoveTracer;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverPolicy;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The settings of one {@link io.grpcshm.DataMovement} configuration, as the bulk-write engine
 * reads them.
 *
 * @param movers the movers moves run on (opened on first use for the defaults)
 * @param policy chooses the mover per move; null when {@code fixedMover} decides (or the CPU)
 * @param fixedMover always this mover; null when the policy decides
 * @param mode the configuration's mode; null: SYNC unless the call or thread names one
 * @param threshold payloads below this are copied on the CPU without a decision
 * @param tracer told of every move after it completed; null for none
 * @param waitStrategy how the sender waits for a mover's completion
 * @param counters per-mover counters, shared by every copy of the configuration
 * @param ready false while the movers are still being opened (CPU copies meanwhile)
 * @param notReadyReason why {@code ready} is false
 */
public record MovementSettings(Supplier<MoverRegistry> movers, Supplier<MoverPolicy> policy,
    MoverKind fixedMover, Mode mode, int threshold, MoveTracer tracer, WaitStrategy waitStrategy,
    MoveCounters counters, BooleanSupplier ready, Supplier<String> notReadyReason) {}
