package io.grpcshm.internal.loop;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.SharedResourceHolder;
import java.util.concurrent.Executor;

/**
 * grpc's default call executor (its shared cached pool, {@code grpc-default-executor-N}), taken
 * on first use and given back by {@link #release}: what a server or channel whose builder names
 * no executor uses, so that a {@link HoldingExecutor} can wrap it. grpc takes and gives back the
 * same pool the same way for its own default.
 */
public final class GrpcDefaultExecutor implements Executor {
  private final Object lock = new Object();
  /** Non-null while held. */
  private volatile Executor pool;
  @GuardedBy("lock") private boolean released;

  @Override
  public void execute(Runnable task) {
    Executor p = pool;
    if (p == null) {
      p = acquire();
    }
    if (p != null) {
      p.execute(task);
      return;
    }
    // After release (a late callback of a call that outlived its server or channel): borrow the
    // pool for this one task; grpc destroys an unused pool only after a delay, and a pool shut
    // down meanwhile still runs what it accepted.
    Executor borrowed = SharedResourceHolder.get(GrpcUtil.SHARED_CHANNEL_EXECUTOR);
    try {
      borrowed.execute(task);
    } finally {
      SharedResourceHolder.release(GrpcUtil.SHARED_CHANNEL_EXECUTOR, borrowed);
    }
  }

  /** The pool, taken now if this is the first use; null once released. */
  private Executor acquire() {
    synchronized (lock) {
      if (released) {
        return null;
      }
      Executor p = pool;
      if (p == null) {
        pool = p = SharedResourceHolder.get(GrpcUtil.SHARED_CHANNEL_EXECUTOR);
      }
      return p;
    }
  }

  /** Gives the pool back (if it was ever taken); later tasks borrow it one at a time. */
  public void release() {
    Executor p;
    synchronized (lock) {
      if (released) {
        return;
      }
      released = true;
      p = pool;
      pool = null;
    }
    if (p != null) {
      SharedResourceHolder.release(GrpcUtil.SHARED_CHANNEL_EXECUTOR, p);
    }
  }

  @Override
  public String toString() {
    return "GrpcDefaultExecutor{" + (pool != null ? "held" : "not held") + "}";
  }
}
