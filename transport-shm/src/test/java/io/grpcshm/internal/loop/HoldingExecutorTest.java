package io.grpcshm.internal.loop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.common.util.concurrent.MoreExecutors;
import io.grpcshm.IdleStrategy;
import io.grpcshm.internal.nativeio.EventFd;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A hand-off to a call's executor made while an event loop polls a member waits for the end of
 * that poll, so what one ring batch brings a call reaches the executor as one wake-up; a refused
 * hand-off fails its own call; everywhere else the executor is used as it is.
 */
class HoldingExecutorTest {
  private static final long BOUND_SECONDS = 30;

  /** Journals every execute and task run, in order. */
  private static final class Journal implements Executor {
    final List<String> events = new CopyOnWriteArrayList<>();
    volatile RuntimeException refuseWith;

    @Override
    public void execute(Runnable task) {
      events.add("execute");
      RuntimeException refusal = refuseWith;
      if (refusal != null) {
        refuseWith = null;
        throw refusal;
      }
      task.run();
    }
  }

  /** A member that runs {@code work} on its first poll, as the handler of {@code call}. */
  private static final class OneShotMember implements EventLoop.Member, EventLoop.HoldOwner {
    final Consumer<OneShotMember> work;
    final CompletableFuture<Void> polled = new CompletableFuture<>();
    final List<String> refused = new CopyOnWriteArrayList<>();
    int call;
    private boolean done;

    OneShotMember(Consumer<OneShotMember> work) {
      this.work = work;
    }

    @Override
    public int poll() {
      if (done) {
        return 0;
      }
      done = true;
      try {
        work.accept(this);
      } finally {
        call = 0;
      }
      return 1;
    }

    @Override
    public int currentCall() {
      return call;
    }

    @Override
    public void heldExecutionRejected(int refusedCall, RuntimeException refusal) {
      refused.add(refusedCall + ": " + refusal.getMessage());
    }

    @Override
    public boolean park() {
      polled.complete(null); // parked after the poll and the release that follows it
      return true;
    }

    @Override
    public void unpark() {}

    @Override
    public void onSocket(int events) {}

    @Override
    public boolean tick(long nowNanos, boolean parked) {
      return false;
    }

    @Override
    public void failed(Throwable t) {
      polled.completeExceptionally(t);
    }

    @Override
    public void removed() {}
  }

  private static void serve(OneShotMember member) throws Exception {
    EventFd socketStandIn = EventFd.create();
    EventLoops.Registration registration =
        EventLoops.register(member, socketStandIn.fd(), IdleStrategy.sleeping());
    try {
      member.polled.get(BOUND_SECONDS, TimeUnit.SECONDS);
    } finally {
      registration.close();
      // The loop drops the descriptor from its epoll set before it could close it.
      CompletableFuture<Void> gone = new CompletableFuture<>();
      registration.loop().execute(() -> gone.complete(null));
      gone.get(BOUND_SECONDS, TimeUnit.SECONDS);
      socketStandIn.close();
    }
  }

  @Test
  void handOffsDuringAPollWaitForItsEndThenGoInOrder() throws Exception {
    Journal pool = new Journal();
    Executor held = HoldingExecutor.around(pool);
    OneShotMember member = new OneShotMember(m -> {
      m.call = 7;
      held.execute(() -> pool.events.add("headers"));
      pool.events.add("loop: message read");
      held.execute(() -> pool.events.add("message"));
      held.execute(() -> pool.events.add("half-close"));
      pool.events.add("loop: batch done");
    });
    serve(member);
    assertEquals(List.of("loop: message read", "loop: batch done",
        "execute", "headers", "execute", "message", "execute", "half-close"), pool.events);
    assertEquals(List.of(), member.refused);
  }

  @Test
  void outsideACallNothingIsHeld() throws Exception {
    Journal pool = new Journal();
    Executor held = HoldingExecutor.around(pool);
    OneShotMember member = new OneShotMember(m -> {
      held.execute(() -> pool.events.add("connection-level task")); // call 0
      pool.events.add("loop: after");
    });
    serve(member);
    assertEquals(List.of("execute", "connection-level task", "loop: after"), pool.events);

    Journal direct = new Journal();
    HoldingExecutor.around(direct).execute(() -> direct.events.add("ran"));
    assertEquals(List.of("execute", "ran"), direct.events, "off the loop: at once");
  }

  @Test
  void aRefusedHandOffFailsItsOwnCallAndTheRestStillGo() throws Exception {
    Journal pool = new Journal();
    Executor held = HoldingExecutor.around(pool);
    OneShotMember member = new OneShotMember(m -> {
      m.call = 3;
      pool.refuseWith = new RejectedExecutionException("pool full");
      held.execute(() -> pool.events.add("call 3 task"));
      m.call = 5;
      held.execute(() -> pool.events.add("call 5 task"));
    });
    serve(member);
    assertEquals(List.of("3: pool full"), member.refused);
    assertEquals(List.of("execute", "execute", "call 5 task"), pool.events);
  }

  @Test
  void grpcsDefaultPoolRunsTasksBeforeAndAfterItIsGivenBack() throws Exception {
    GrpcDefaultExecutor pool = new GrpcDefaultExecutor();
    CompletableFuture<String> before = new CompletableFuture<>();
    pool.execute(() -> before.complete(Thread.currentThread().getName()));
    assertTrue(before.get(BOUND_SECONDS, TimeUnit.SECONDS).startsWith("grpc-default-executor"),
        before.get());
    pool.release();
    pool.release(); // idempotent
    CompletableFuture<String> late = new CompletableFuture<>();
    pool.execute(() -> late.complete(Thread.currentThread().getName()));
    assertTrue(late.get(BOUND_SECONDS, TimeUnit.SECONDS).startsWith("grpc-default-executor"),
        "a callback after the release still runs: " + late.get());
  }

  @Test
  void directAndAlreadyHoldingExecutorsAreNotWrapped() {
    assertSame(MoreExecutors.directExecutor(),
        HoldingExecutor.around(MoreExecutors.directExecutor()));
    Executor once = HoldingExecutor.around(Runnable::run);
    assertSame(once, HoldingExecutor.around(once));
    assertSame(null, HoldingExecutor.around(null));
    assertTrue(once instanceof HoldingExecutor);
  }
}
