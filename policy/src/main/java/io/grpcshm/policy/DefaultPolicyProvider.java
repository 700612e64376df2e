package io.grpcshm.policy;

import io.grpcshm.dsa.MoverPolicy;
import io.grpcshm.dsa.MoverRegistry;
import java.util.function.IntSupplier;

/**
 * The learned policy as a transport's default ({@link MoverPolicy#forHost}): the shipped model
 * over the host's movers, with live {@link Signals} whose concurrency is the transport's moves in
 * flight (what the profiler counted), and this host's calibrated lines measured as the profiler
 * measures them (the model's residual is added to them). Signals samples only what the model
 * reads: the shipped model reads neither sampled signal, so no sampling thread runs.
 */
public final class DefaultPolicyProvider implements MoverPolicy.Provider {
  @Override
  public MoverPolicy create(MoverRegistry movers, IntSupplier movesInFlight) {
    return PolicyEngine.builder()
        .hostMovers(movers)
        .hostCalibration(movers)
        .signals(Signals.start(movesInFlight::getAsInt))
        .build();
  }
}
