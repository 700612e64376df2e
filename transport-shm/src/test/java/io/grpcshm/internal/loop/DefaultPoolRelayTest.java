package io.grpcshm.internal.loop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.IdleStrategy;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The relay of a loop's hand-offs to grpc's default pool: one pool thread runs what queues up
 * behind its task, and a queued hand-off never waits for a blocked one. The test thread plays
 * the loop.
 */
class DefaultPoolRelayTest {
  private static final long BOUND_SECONDS = 30;

  /** The pool, counting the tasks it was given. */
  private final ExecutorService threads = Executors.newCachedThreadPool();
  private final AtomicInteger submitted = new AtomicInteger();
  private final Executor pool = task -> {
    submitted.incrementAndGet();
    threads.execute(task);
  };

  /** Refused hand-offs reported to their owner: call ids. */
  private final List<Integer> refusedCalls = new CopyOnWriteArrayList<>();
  private final EventLoop.HoldOwner owner = new EventLoop.HoldOwner() {
    @Override
    public int currentCall() {
      return 0;
    }

    @Override
    public void heldExecutionRejected(int call, RuntimeException refusal) {
      refusedCalls.add(call);
    }
  };

  @AfterEach
  void stopPool() throws InterruptedException {
    threads.shutdownNow();
    assertTrue(threads.awaitTermination(BOUND_SECONDS, TimeUnit.SECONDS), "pool ended");
  }

  @Test
  void handOffsQueuedBehindARunningOneRunInOrderOnThatThreadWithoutWakingAnother()
      throws Exception {
    DefaultPoolRelay relay = new DefaultPoolRelay("test", IdleStrategy.adaptive(), 1);
    CountDownLatch allQueued = new CountDownLatch(1);
    List<Integer> ran = new CopyOnWriteArrayList<>();
    List<Thread> ranOn = new CopyOnWriteArrayList<>();
    CountDownLatch allRan = new CountDownLatch(100);
    for (int i = 0; i < 100; i++) {
      int n = i;
      relay.push(pool, () -> {
        if (n == 0) {
          await(allQueued);
        }
        ran.add(n);
        ranOn.add(Thread.currentThread());
        allRan.countDown();
      }, owner, n + 1);
    }
    allQueued.countDown();
    assertTrue(allRan.await(BOUND_SECONDS, TimeUnit.SECONDS), "every hand-off ran");
    assertEquals(java.util.stream.IntStream.range(0, 100).boxed().toList(), ran, "in order");
    assertEquals(1, submitted.get(), "one pool task ran all 100 (it never ran out of work)");
    assertTrue(ranOn.stream().allMatch(t -> t == ranOn.get(0)), "on one thread");
  }

  @Test
  void aHandOffQueuedBehindABlockedOneRunsOnceTheLoopSeesNoProgressForTheStallPeriod()
      throws Exception {
    DefaultPoolRelay relay = new DefaultPoolRelay("test", IdleStrategy.adaptive(), 1);
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch secondRan = new CountDownLatch(1);
    long beforeFirst = System.nanoTime();
    try {
      pushBlocked(relay, release, 1); // a handler blocked until the second call has run
      relay.push(pool, secondRan::countDown, owner, 3);
      // Within the stall period the loop's check starts nothing: the second waits.
      relay.check(beforeFirst, false);
      assertFalse(secondRan.await(20, TimeUnit.MILLISECONDS), "waits behind the first");
      assertEquals(1, submitted.get());
      // The loop keeps checking on its turns; once the period has passed, another pool thread
      // takes the second hand-off while the first is still blocked.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(BOUND_SECONDS);
      while (secondRan.getCount() > 0 && System.nanoTime() < deadline) {
        relay.check(System.nanoTime(), false);
        Thread.sleep(1);
      }
      assertEquals(0, secondRan.getCount(), "ran while the first was blocked");
      assertEquals(2, submitted.get());
    } finally {
      release.countDown();
    }
  }

  @Test
  void withCoresToSpareAHandOffFindingEveryRelayBusyStartsAnotherAtOnceUpToTheLimit()
      throws Exception {
    DefaultPoolRelay relay = new DefaultPoolRelay("test", IdleStrategy.adaptive(), 2);
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch thirdRan = new CountDownLatch(1);
    long beforeFirst = System.nanoTime();
    try {
      pushBlocked(relay, release, 1);
      // The first is busy: a second starts at once, with no stall period passed; both run side
      // by side (pushBlocked returns once the second runs).
      pushBlocked(relay, release, 3);
      assertEquals(2, submitted.get());
      relay.push(pool, thirdRan::countDown, owner, 5); // both busy, at the limit: it waits
      relay.check(beforeFirst, false);
      assertFalse(thirdRan.await(20, TimeUnit.MILLISECONDS), "waits within the stall period");
      assertEquals(2, submitted.get());
      release.countDown();
      assertTrue(thirdRan.await(BOUND_SECONDS, TimeUnit.SECONDS), "a freed relay takes it");
    } finally {
      release.countDown();
    }
  }

  @Test
  void aLoopAboutToSleepStartsAPoolTaskForWhatIsQueuedAtOnce() throws Exception {
    DefaultPoolRelay relay = new DefaultPoolRelay("test", IdleStrategy.adaptive(), 1);
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch secondRan = new CountDownLatch(1);
    try {
      pushBlocked(relay, release, 1);
      relay.push(pool, secondRan::countDown, owner, 3);
      // No one would check while the loop sleeps: no stall period is waited for.
      relay.check(System.nanoTime(), true);
      assertTrue(secondRan.await(BOUND_SECONDS, TimeUnit.SECONDS));
    } finally {
      release.countDown();
    }
  }

  @Test
  void aPoolRefusingTheRelayFailsEveryQueuedCallAndTheNextHandOffTriesAgain()
      throws Exception {
    AtomicInteger refusals = new AtomicInteger(1);
    Executor refusing = task -> {
      if (refusals.getAndDecrement() > 0) {
        throw new RejectedExecutionException("full");
      }
      pool.execute(task);
    };
    DefaultPoolRelay relay = new DefaultPoolRelay("test", IdleStrategy.adaptive(), 1);
    relay.push(refusing, () -> { }, owner, 1);
    assertEquals(List.of(1), refusedCalls);
    CountDownLatch ran = new CountDownLatch(1);
    relay.push(refusing, ran::countDown, owner, 3);
    assertTrue(ran.await(BOUND_SECONDS, TimeUnit.SECONDS), "the relay works again");
    assertEquals(List.of(1), refusedCalls, "only the refused call failed");
  }

  /** Queues a hand-off that blocks until {@code release}; returns once it runs. */
  private void pushBlocked(DefaultPoolRelay relay, CountDownLatch release, int call)
      throws InterruptedException {
    CountDownLatch running = new CountDownLatch(1);
    relay.push(pool, () -> {
      running.countDown();
      await(release);
    }, owner, call);
    assertTrue(running.await(BOUND_SECONDS, TimeUnit.SECONDS), "hand-off " + call + " runs");
  }

  private static void await(CountDownLatch latch) {
    try {
      if (!latch.await(BOUND_SECONDS, TimeUnit.SECONDS)) {
        throw new AssertionError("not released");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }
}
