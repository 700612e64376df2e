package io.grpcshm.internal.transport;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.BiConsumer;

/**
 * Runs one stream's transport-state operations one at a time, on whichever thread comes first,
 * and never makes a thread wait for another: an operation that finds the stream busy is handed to
 * the thread that holds it, which runs it before letting go (a combining lock, like grpc's
 * {@code SerializingExecutor} run inline). This is grpc's "transport thread" of a stream.
 *
 * <p>Why not a lock: grpc calls stream listeners from transport-state operations, and with
 * {@code directExecutor()} the application runs inside them and may act on other calls of the
 * same connection, or take its own locks. A thread holding one stream and waiting for another
 * (or for an application lock) can deadlock; a thread that never waits cannot.
 *
 * <p>Hot paths use {@link #run(Object, Object, BiConsumer)} with a method reference, or {@link
 * #tryEnter}/{@link #exit} around inline code, and allocate only when contended ({@link #defer}
 * takes a closure). Operations keep their order per submitting thread;
 * a deferred one runs after every operation deferred before it. A deferred operation that throws
 * is given to the failure handler (it must not escape into the unrelated thread that ran it),
 * except a refusal by the call's executor: that ends this call only ({@link RefusalListener}).
 */
final class StreamSerializer {
  private static final VarHandle BUSY;

  static {
    try {
      BUSY = MethodHandles.lookup().findVarHandle(StreamSerializer.class, "busy", int.class);
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }

  @SuppressWarnings("unused") // through BUSY
  private volatile int busy;
  /** Allocated on first contention: most streams of small calls never see one. */
  private volatile ConcurrentLinkedQueue<Runnable> deferred;
  private final FailureHandler onDeferredFailure;
  private final RefusalListener onRefusal;

  /** Told when an operation deferred to another thread threw: the connection's or transport's. */
  interface FailureHandler {
    void streamOperationFailed(RuntimeException e);
  }

  /**
   * The stream, told when a deferred operation handed a callback to the call's executor and the
   * executor refused it. Outside an event loop nothing holds that hand-off (the loop reports a
   * refusal of a held one the same way), so the refusal surfaces here: it is that call's
   * failure, not the connection's.
   */
  interface RefusalListener {
    /** Runs on the thread holding the stream; the stream must end the call. */
    void callbacksRefused(RejectedExecutionException refusal);
  }

  StreamSerializer(FailureHandler onDeferredFailure, RefusalListener onRefusal) {
    this.onDeferredFailure = onDeferredFailure;
    this.onRefusal = onRefusal;
  }

  /**
   * Takes the stream if it is free; the caller then runs its operation and calls {@link #exit}.
   * Operations deferred before are run first, so a thread's operations keep their order even
   * when an earlier one had to be deferred and this one finds the stream free.
   */
  boolean tryEnter() {
    if ((int) BUSY.getVolatile(this) != 0 || !BUSY.compareAndSet(this, 0, 1)) {
      return false;
    }
    runDeferred();
    return true;
  }

  /** Lets go of the stream, first running what other threads deferred meanwhile. */
  void exit() {
    while (true) {
      runDeferred();
      BUSY.setVolatile(this, 0);
      // An operation deferred after our last poll but before the release would be stranded:
      // whoever takes the stream next runs it, and if nobody is coming, that is us.
      ConcurrentLinkedQueue<Runnable> queue = deferred;
      if (queue == null || queue.isEmpty() || !BUSY.compareAndSet(this, 0, 1)) {
        return;
      }
    }
  }

  /** Runs {@code op} now if the stream is free, else on the thread that holds it. */
  void execute(Runnable op) {
    if (tryEnter()) {
      try {
        op.run();
      } finally {
        exit();
      }
    } else {
      defer(op);
    }
  }

  /**
   * {@code op(target, argument)} now if the stream is free, else on the thread that holds it.
   * With an {@code op} that captures nothing (a method reference such as {@code
   * TransportState::dataReceived}), nothing is allocated unless the stream is busy.
   */
  <T, A> void run(T target, A argument, BiConsumer<T, A> op) {
    if (tryEnter()) {
      try {
        op.accept(target, argument);
      } finally {
        exit();
      }
    } else {
      defer(() -> op.accept(target, argument));
    }
  }

  /** Hands {@code op} to the thread holding the stream (or runs it, if that one just left). */
  void defer(Runnable op) {
    queue().add(op);
    if (tryEnter()) {
      exit();
    }
  }

  private ConcurrentLinkedQueue<Runnable> queue() {
    ConcurrentLinkedQueue<Runnable> queue = deferred;
    if (queue == null) {
      synchronized (this) {
        queue = deferred;
        if (queue == null) {
          deferred = queue = new ConcurrentLinkedQueue<>();
        }
      }
    }
    return queue;
  }

  /** Runs what was deferred, in order (the caller holds the stream). */
  private void runDeferred() {
    ConcurrentLinkedQueue<Runnable> queue = deferred;
    if (queue == null) {
      return;
    }
    Runnable op;
    while ((op = queue.poll()) != null) {
      try {
        op.run();
      } catch (RejectedExecutionException e) {
        onRefusal.callbacksRefused(e);
      } catch (RuntimeException e) {
        onDeferredFailure.streamOperationFailed(e);
      }
    }
  }
}
