package io.grpcshm.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

/** The per-thread counters behind SmallCallBenchmark's context-switch and JIT lines. */
class ThreadCpuTest {
  private static final long SELF = ProcessHandle.current().pid();

  @Test
  void aThreadThatEndsMeanwhileDoesNotTakeItsSwitchesOffTheTotal() throws Exception {
    // A thread with a long history of sleeps, ended after the first reading: a process total
    // (new minus old) subtracts its whole history, which is how the benchmark printed 0.00
    // switches per call for callers that slept on every call (they ended before the reading).
    CountDownLatch endingMayEnd = new CountDownLatch(1);
    Thread ending = Thread.ofPlatform().name("tct-ending").start(() -> {
      parkTimes(2_000);
      awaitQuietly(endingMayEnd);
    });
    Map<String, ThreadCpu.Counters> before;
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (ThreadCpu.counters(SELF).values().stream()
          .noneMatch(c -> c.name().equals("tct-ending") && c.switches() >= 1_000)) {
        assertTrue(System.nanoTime() < deadline, "tct-ending never reached 1,000 switches");
        Thread.sleep(10);
      }
      before = ThreadCpu.counters(SELF);
    } finally {
      endingMayEnd.countDown();
      ending.join(TimeUnit.SECONDS.toMillis(60));
    }

    CountDownLatch measuredMayEnd = new CountDownLatch(1);
    CountDownLatch parked = new CountDownLatch(1);
    Thread measured = Thread.ofPlatform().name("tct-measured").start(() -> {
      parkTimes(200);
      parked.countDown();
      awaitQuietly(measuredMayEnd);
    });
    try {
      assertTrue(parked.await(60, TimeUnit.SECONDS));
      long switches = ThreadCpu.since(SELF, before).switches();
      // A timed park with no permit given sleeps: about 200 switches (100 leaves room for
      // early returns), whatever else this JVM's threads did; the ended thread's 1,000 or more
      // are not subtracted.
      assertTrue(switches >= 100, "switches since the reading: " + switches);
    } finally {
      measuredMayEnd.countDown();
      measured.join(TimeUnit.SECONDS.toMillis(60));
    }
  }

  @Test
  void anUnreadableProcessHasNoThreads() {
    assertTrue(ThreadCpu.counters(Long.MAX_VALUE).isEmpty());
    assertEquals(0, ThreadCpu.since(Long.MAX_VALUE, Map.of()).switches());
  }

  private static void parkTimes(int times) {
    for (int i = 0; i < times; i++) {
      LockSupport.parkNanos(20_000);
    }
  }

  private static void awaitQuietly(CountDownLatch latch) {
    try {
      latch.await(60, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
