package io.grpcshm.internal.loop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.internal.SharedResourceHolder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The scheduler grpc gets for call deadlines: on time, nothing kept, no wake-up per call. */
class TransportTimerTest {
  private ScheduledExecutorService timer;

  @BeforeEach
  void take() {
    timer = SharedResourceHolder.get(TransportTimer.RESOURCE);
  }

  @AfterEach
  void giveBack() {
    SharedResourceHolder.release(TransportTimer.RESOURCE, timer);
  }

  @Test
  void aTaskRunsAtItsTimeNotBefore() throws Exception {
    long start = System.nanoTime();
    ScheduledFuture<Long> ran = timer.schedule(System::nanoTime, 50, TimeUnit.MILLISECONDS);
    long at = ran.get(30, TimeUnit.SECONDS);
    assertTrue(at - start >= TimeUnit.MILLISECONDS.toNanos(50), "ran early");
  }

  @Test
  void aCancelledTaskIsGoneAtOnce() {
    // A call's deadline is cancelled when the call ends; the task holds the call, so it must not
    // stay queued until its time comes.
    var queue = ((ScheduledThreadPoolExecutor) timer).getQueue();
    int before = queue.size();
    for (int i = 0; i < 10_000; i++) {
      timer.schedule(() -> { }, 30, TimeUnit.SECONDS).cancel(false);
    }
    assertEquals(before, queue.size());
  }

  @Test
  void schedulingAFarDeadlineWakesNoThread() throws Exception {
    Path timerThread = timer.schedule(() -> Files.readSymbolicLink(Path.of("/proc/thread-self")),
        0, TimeUnit.MILLISECONDS).get(30, TimeUnit.SECONDS);
    Path status = Path.of("/proc/self/task").resolve(timerThread.getFileName()).resolve("status");
    long switches0 = voluntarySwitches(status);
    long start = System.nanoTime();
    int calls = 1_000;
    for (int i = 0; i < calls; i++) {
      // One call at a time: its deadline scheduled at the start, cancelled at the end.
      ScheduledFuture<?> deadline = timer.schedule(() -> { }, 30, TimeUnit.SECONDS);
      Thread.sleep(0, 100_000);
      deadline.cancel(false);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    long woken = voluntarySwitches(status) - switches0;
    // The anchor wakes the thread once a second; a wake-up per call would be ~1,000.
    long allowed = 5 + 2 * (long) Math.ceil(seconds * 1000 / TransportTimer.ANCHOR_PERIOD_MS);
    assertTrue(woken <= allowed, woken + " timer wake-ups for " + calls + " calls in "
        + seconds + " s (allowed " + allowed + ")");
  }

  private static long voluntarySwitches(Path status) throws IOException {
    for (String line : Files.readAllLines(status)) {
      if (line.startsWith("voluntary_ctxt_switches:")) {
        return Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
      }
    }
    throw new IllegalStateException("no voluntary_ctxt_switches in " + status);
  }
}
