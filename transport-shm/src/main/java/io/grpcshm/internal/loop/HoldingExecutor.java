package io.grpcshm.internal.loop;

import com.google.common.util.concurrent.MoreExecutors;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * The executor grpc gets for calls that may run over shared memory: a hand-off made while an
 * event loop handles a ring batch waits for the end of that batch ({@link
 * EventLoop#holdExecution}), so what one batch brings a call (a unary request's headers, message
 * and half-close; an answer's headers, message and trailers) wakes one of the wrapped executor's
 * threads once, not up to three times. Anywhere else (the application's threads, Netty's event
 * loops) it is exactly the executor it wraps.
 *
 * <p>grpc's direct executor is never wrapped: grpc recognises it by identity and runs callbacks
 * inline, with no hand-off to hold.
 */
public final class HoldingExecutor implements Executor {
  /** The per-call executor of grpc's blocking unary stub, by name (grpc-stub is not ours). */
  private static final String BLOCKING_STUB_EXECUTOR = "io.grpc.stub.ClientCalls$ThreadlessExecutor";

  private final Executor target;
  /**
   * The thread that made a blocking stub's call: it will wait for the answer anyway, so the
   * transport may let it wait on a reply mailbox instead. Null for every other executor.
   */
  private volatile Thread blockingCaller;
  private static final java.util.concurrent.atomic.AtomicReferenceFieldUpdater<HoldingExecutor,
      Thread> BLOCKING_CALLER = java.util.concurrent.atomic.AtomicReferenceFieldUpdater.newUpdater(
          HoldingExecutor.class, Thread.class, "blockingCaller");

  private HoldingExecutor(Executor target, Thread blockingCaller) {
    this.target = target;
    this.blockingCaller = blockingCaller;
  }

  /**
   * {@code executor} with its loop hand-offs held; null, grpc's direct executor and an executor
   * already wrapped come back unchanged.
   */
  public static Executor around(Executor executor) {
    if (executor == null || executor == MoreExecutors.directExecutor()
        || executor instanceof HoldingExecutor) {
      return executor;
    }
    return new HoldingExecutor(executor, null);
  }

  /**
   * A client interceptor that wraps a call's own executor (a blocking stub passes one per call)
   * the same way; innermost, so it sees the executor the call will use.
   */
  public static ClientInterceptor callExecutorInterceptor() {
    return CALL_EXECUTOR_INTERCEPTOR;
  }

  private static final ClientInterceptor CALL_EXECUTOR_INTERCEPTOR = new ClientInterceptor() {
    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      Executor own = options.getExecutor();
      Executor held;
      Thread caller = Thread.currentThread();
      if (own != null && method.getType() == MethodDescriptor.MethodType.UNARY
          && !caller.isVirtual()
          && own.getClass().getName().equals(BLOCKING_STUB_EXECUTOR)) {
        // grpc's blocking stub calls newCall on the thread that then waits in its executor. Not
        // a virtual thread: a futex wait would pin its carrier, where grpc's park unmounts it.
        held = new HoldingExecutor(own, caller);
      } else {
        held = around(own);
      }
      return next.newCall(method, held == own ? options : options.withExecutor(held));
    }
  };

  /**
   * The thread of a blocking unary stub call that made this executor, which waits for the call's
   * answer, for the call's first stream only: null for any other call, and for every later stream
   * of the call (a transparent retry's, whose operations grpc replays from a queue).
   */
  public Thread takeBlockingCaller() {
    Thread caller = blockingCaller;
    return caller != null && BLOCKING_CALLER.compareAndSet(this, caller, null) ? caller : null;
  }

  /** The executor the tasks run on. */
  public Executor target() {
    return target;
  }

  @Override
  public void execute(Runnable task) {
    Objects.requireNonNull(task, "task");
    if (!EventLoop.holdExecution(target, task)) {
      target.execute(task);
    }
  }

  @Override
  public String toString() {
    return "HoldingExecutor{" + target + "}";
  }
}
