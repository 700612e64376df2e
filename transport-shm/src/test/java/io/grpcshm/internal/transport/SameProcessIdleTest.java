package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.grpcshm.IdleStrategy;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket.PeerCredentials;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A connection whose peer is this process keeps its loop's spin but drops the yield phase
 * (one loop serves both ends there, and staying awake after the work delays the threads the
 * call needs next); a connection to another process keeps the configured strategy.
 */
class SameProcessIdleTest {
  private static final IdleStrategy CONFIGURED =
      IdleStrategy.of(Duration.ofNanos(20_000), Duration.ofNanos(200_000));

  @Test
  void aPeerInThisProcessDropsTheYieldPhase() {
    IdleStrategy s = ShmConnection.idleStrategyFor(CONFIGURED, new PeerCredentials(42, 1000, 1000),
        42);
    assertEquals(IdleStrategy.of(Duration.ofNanos(20_000), Duration.ZERO), s);
    assertEquals(20_000, s.spinNanos());
  }

  @Test
  void aPeerInAnotherProcessOrUnknownKeepsTheConfiguredStrategy() {
    assertSame(CONFIGURED, ShmConnection.idleStrategyFor(CONFIGURED,
        new PeerCredentials(43, 1000, 1000), 42));
    assertSame(CONFIGURED, ShmConnection.idleStrategyFor(CONFIGURED, null, 42));
    // A peer in another pid namespace reads as pid 0, never as ours.
    assertSame(CONFIGURED, ShmConnection.idleStrategyFor(CONFIGURED,
        new PeerCredentials(0, 1000, 1000), 42));
  }

  @Test
  void strategiesWithoutAYieldPhaseAreKept() {
    IdleStrategy sleep = IdleStrategy.sleeping();
    assertSame(sleep, IdleStrategy.withoutYield(sleep));
    IdleStrategy spin = IdleStrategy.busySpin();
    assertSame(spin, IdleStrategy.withoutYield(spin));
  }
}
