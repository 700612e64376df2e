package io.grpcshm.internal.loop;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.IdleStrategy;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class LoopIdlerTest {
  private static final long US = 1_000;

  @Test
  void spinsThenYieldsThenSaysSleep() {
    LoopIdler idler = new LoopIdler(IdleStrategy.of(Duration.ofNanos(20 * US),
        Duration.ofNanos(200 * US)));
    long t = 1_000_000;
    assertTrue(idler.idle(0, t), "first empty turn starts the spin");
    assertTrue(idler.idle(0, t + 19 * US), "still spinning");
    assertTrue(idler.idle(0, t + 21 * US), "yielding");
    assertTrue(idler.idle(0, t + 219 * US), "still yielding");
    assertFalse(idler.idle(0, t + 220 * US), "both phases spent: sleep");
  }

  @Test
  void workRestartsTheSpin() {
    LoopIdler idler = new LoopIdler(IdleStrategy.of(Duration.ofNanos(10 * US), Duration.ZERO));
    long t = 5_000_000;
    idler.idle(0, t);
    assertFalse(idler.idle(0, t + 10 * US));
    assertTrue(idler.idle(3, t + 11 * US), "a turn with work polls again");
    assertTrue(idler.idle(0, t + 12 * US), "a new idle run starts after work");
    assertFalse(idler.idle(0, t + 22 * US));
    idler.reset();
    assertTrue(idler.idle(0, t + 30 * US), "after a sleep the spin starts over");
  }

  @Test
  void sleepingStrategyNeverSpinsAndBusySpinNeverSleeps() {
    long t = 7_000_000;
    assertFalse(new LoopIdler(IdleStrategy.sleeping()).idle(0, t));
    LoopIdler spinner = new LoopIdler(IdleStrategy.busySpin());
    spinner.idle(0, t);
    assertTrue(spinner.idle(0, t + Duration.ofDays(365).toNanos()));
  }
}
