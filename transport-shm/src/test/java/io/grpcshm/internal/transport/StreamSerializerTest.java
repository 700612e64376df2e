package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class StreamSerializerTest {
  private final List<RuntimeException> failures = new ArrayList<>();
  private final List<RuntimeException> refusals = new ArrayList<>();
  private final StreamSerializer serializer = new StreamSerializer(failures::add, refusals::add);

  @Test
  void runsInlineWhenFree() {
    Thread caller = Thread.currentThread();
    AtomicReference<Thread> ranOn = new AtomicReference<>();
    serializer.execute(() -> ranOn.set(Thread.currentThread()));
    assertSame(caller, ranOn.get());
    assertTrue(serializer.tryEnter(), "free again afterwards");
    serializer.exit();
  }

  @Test
  void operationOfABusyStreamRunsOnTheHolderBeforeItLetsGo() throws Exception {
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch deferred = new CountDownLatch(1);
    AtomicReference<Thread> ranOn = new AtomicReference<>();
    List<String> order = new ArrayList<>();
    Thread holder = new Thread(() -> serializer.execute(() -> {
      order.add("first");
      entered.countDown();
      await(deferred);
    }), "holder");
    holder.start();
    assertTrue(entered.await(30, TimeUnit.SECONDS));
    // The submitter neither waits nor runs it: the holder does, on its way out.
    serializer.execute(() -> {
      ranOn.set(Thread.currentThread());
      order.add("second");
    });
    assertEquals(List.of("first"), order, "not run while the stream is busy");
    deferred.countDown();
    holder.join(30_000);
    assertSame(holder, ranOn.get());
    assertEquals(List.of("first", "second"), order);
  }

  @Test
  void reentrantOperationRunsAfterTheCurrentOneNotInsideIt() {
    List<String> order = new ArrayList<>();
    serializer.execute(() -> {
      order.add("outer start");
      serializer.execute(() -> order.add("inner"));
      order.add("outer end");
    });
    assertEquals(List.of("outer start", "outer end", "inner"), order);
  }

  @Test
  void concurrentSubmittersRunEveryOperationOnceAndNeverTwoAtATime() throws Exception {
    int threads = 4;
    int perThread = 50_000;
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger overlaps = new AtomicInteger();
    int[] count = new int[1]; // guarded by the serializer itself
    int[][] lastSeen = new int[threads][1];
    AtomicInteger outOfOrder = new AtomicInteger();
    CyclicBarrier start = new CyclicBarrier(threads);
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int id = t;
      Thread w = new Thread(() -> {
        await(start);
        for (int i = 1; i <= perThread; i++) {
          int seq = i;
          serializer.execute(() -> {
            if (inside.incrementAndGet() != 1) {
              overlaps.incrementAndGet();
            }
            count[0]++;
            if (lastSeen[id][0] != seq - 1) {
              outOfOrder.incrementAndGet(); // one submitter's operations keep their order
            }
            lastSeen[id][0] = seq;
            inside.decrementAndGet();
          });
        }
      });
      workers.add(w);
      w.start();
    }
    for (Thread w : workers) {
      w.join(60_000);
      assertFalse(w.isAlive());
    }
    // Every submitter has returned; an operation deferred by the last one ran before its holder
    // let go, so all are done.
    assertTrue(serializer.tryEnter());
    try {
      assertEquals(threads * perThread, count[0]);
    } finally {
      serializer.exit();
    }
    assertEquals(0, overlaps.get());
    assertEquals(0, outOfOrder.get());
  }

  @Test
  void deferredOperationThatThrowsGoesToTheFailureHandlerAndLaterOnesStillRun()
      throws Exception {
    IllegalStateException boom = new IllegalStateException("peer broke the protocol");
    assertEquals(1, throwWhileHeldThenCount(boom));
    assertEquals(List.of(boom), failures);
    assertEquals(List.of(), refusals);
  }

  /**
   * A deferred operation whose callback the call's executor refused (grpc's listener hand-off
   * throws) is that call's failure: the stream hears it, the connection's handler does not.
   */
  @Test
  void deferredOperationRefusedByTheCallExecutorGoesToTheStreamOnly() throws Exception {
    RejectedExecutionException refused = new RejectedExecutionException("executor is full");
    assertEquals(1, throwWhileHeldThenCount(refused));
    assertEquals(List.of(refused), refusals);
    assertEquals(List.of(), failures, "not the connection's failure");
  }

  /**
   * While another thread holds the stream, defers an operation that throws {@code thrown} and
   * then one that counts; lets the holder run both on its way out. Returns the count.
   */
  private int throwWhileHeldThenCount(RuntimeException thrown) throws Exception {
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread holder = new Thread(() -> serializer.execute(() -> {
      entered.countDown();
      await(release);
    }));
    holder.start();
    assertTrue(entered.await(30, TimeUnit.SECONDS));
    AtomicInteger after = new AtomicInteger();
    serializer.execute(() -> {
      throw thrown;
    });
    serializer.execute(after::incrementAndGet);
    release.countDown();
    holder.join(30_000);
    return after.get();
  }

  private static void await(CountDownLatch latch) {
    try {
      assertTrue(latch.await(30, TimeUnit.SECONDS));
    } catch (InterruptedException e) {
      throw new AssertionError(e);
    }
  }

  private static void await(CyclicBarrier barrier) {
    try {
      barrier.await(30, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
