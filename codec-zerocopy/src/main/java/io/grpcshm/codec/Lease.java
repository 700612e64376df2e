package io.grpcshm.codec;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Transport memory lent to one parsed message: the detached grpc stream that owns it (closing
 * that stream is the transport's release, e.g. grpc-shm's RELEASE frame) and a guarded view of
 * the bytes that stops working when the lease ends.
 *
 * <p>The guard: the transport's direct {@link ByteBuffer} is re-scoped to a shared {@link Arena}
 * of our own ({@link MemorySegment#reinterpret(Arena, java.util.function.Consumer)}), and only
 * that view is given to protobuf. Every {@code ByteString} protobuf aliases is a slice of it and
 * inherits its scope, so once {@link #release()} closed the arena, reads through the
 * {@code ByteBuffer} API throw {@link IllegalStateException} instead of returning whatever the
 * transport put there next. The arena is closed <em>before</em> the stream, so no read can start
 * on memory already given back.
 *
 * <p>Reachability (why the safety net is correct): our arena's scope holds the reinterpret
 * cleanup action, which holds this lease; every aliased {@code ByteBuffer} holds the scope. So the
 * lease is reachable exactly as long as the message, one of its aliased {@code ByteString}s, or
 * a {@link ZeroCopyMessage} handle is. The {@link Cleaner} action only references the
 * {@link Releaser} (stream + stats), never the lease, so it can run once nothing can read the
 * bytes any more.
 */
final class Lease {
  private static final Logger log = Logger.getLogger(Lease.class.getName());
  static final Cleaner CLEANER = Cleaner.create();

  private final Arena arena = Arena.ofShared();
  private final ByteBuffer guarded;
  private final Releaser releaser;
  private final Cleaner.Cleanable cleanable;
  private final AtomicBoolean released = new AtomicBoolean();
  /** Set by the arena's cleanup action; only there so the scope references this lease. */
  private volatile boolean scopeClosed;

  /**
   * @param transportView direct buffer whose first {@code size} bytes are the message; must stay
   *     valid until {@code owner} is closed
   * @param owner the detached stream that owns the memory; closed exactly once
   */
  Lease(ByteBuffer transportView, int size, InputStream owner, ZeroCopyStats stats) {
    this.releaser = new Releaser(owner, stats);
    MemorySegment raw = MemorySegment.ofBuffer(transportView).asSlice(0, size);
    // reinterpret is a restricted method (needs --enable-native-access, as grpc-shm does).
    MemorySegment scoped = raw.reinterpret(arena, ignored -> scopeClosed = true);
    this.guarded = scoped.asByteBuffer().asReadOnlyBuffer();
    this.cleanable = CLEANER.register(this, releaser);
    // protobuf's Unsafe paths read the aliases by raw address, even after the release. Those
    // aliases hold our scope, not the transport's; the transport keeps its memory mapped (or
    // a harmless placeholder at its addresses) while its own view is reachable. So the
    // transport's view must live as long as our scope does, closed or not.
    CLEANER.register(scoped.scope(), new KeepReachable(transportView));
  }

  /** The view protobuf parses and aliases; invalid after {@link #release()}. */
  ByteBuffer buffer() {
    return guarded;
  }

  boolean isReleased() {
    return released.get();
  }

  /** Invalidates every aliased view, then gives the memory back to the transport. Idempotent. */
  void release() {
    end(Releaser.EXPLICIT);
  }

  /** Like {@link #release()} for a lease whose message never existed (parse failed): uncounted. */
  void discard() {
    end(Releaser.UNCOUNTED);
  }

  private void end(int how) {
    if (!released.compareAndSet(false, true)) {
      return;
    }
    try {
      // Shared arena close: a handshake with all threads; a read racing with it fails in that
      // thread rather than seeing memory the transport is about to reuse.
      arena.close();
    } finally {
      releaser.release(how);
      cleanable.clean(); // unregisters; the releaser already ran, so this does nothing more
    }
  }

  /** Holds an object strongly until the Cleaner runs it; must not reference the scope. */
  private record KeepReachable(Object target) implements Runnable {
    @Override
    public void run() {
      // Nothing to do: dropping this action is what lets the target go.
    }
  }

  /** Closes the owning stream once; shared by explicit release and the Cleaner. */
  static final class Releaser implements Runnable {
    static final int EXPLICIT = 0;
    static final int BY_CLEANER = 1;
    static final int UNCOUNTED = 2;
    private final InputStream owner;
    private final ZeroCopyStats stats;
    private final AtomicBoolean done = new AtomicBoolean();

    Releaser(InputStream owner, ZeroCopyStats stats) {
      this.owner = owner;
      this.stats = stats;
    }

    /** Cleaner entry point: the lease became unreachable without being released. */
    @Override
    public void run() {
      release(BY_CLEANER);
    }

    void release(int how) {
      if (!done.compareAndSet(false, true)) {
        return;
      }
      if (how != UNCOUNTED) {
        stats.onReleased(how == BY_CLEANER);
      }
      try {
        owner.close();
      } catch (IOException | RuntimeException e) {
        // Runs on the Cleaner thread or in close(): nobody to report to but the log.
        log.log(Level.WARNING, "closing a detached grpc stream failed", e);
      }
    }
  }
}
