package io.grpcshm.internal.loop;

import io.grpcshm.IdleStrategy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The process's event loops: a few threads for all shared-memory connections, however many.
 * Connections with the same {@link IdleStrategy} share loops; a connection goes to the loop that
 * serves the fewest. A loop's thread starts with its first connection and ends a while after its
 * last ({@link EventLoop#LINGER_NANOS}).
 *
 * <p>How many loops per idle strategy: {@code -Dio.grpcshm.eventLoops=N}; by default one per two
 * cores, at least one and at most four. A loop that spins takes a core while it has hot
 * connections, so on small hosts fewer is better; one loop moves several hundred thousand frames
 * a second.
 */
public final class EventLoops {
  static final int LOOPS_PER_STRATEGY = Integer.getInteger("io.grpcshm.eventLoops",
      Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2)));
  private static final Object LOCK = new Object();
  private static final Map<IdleStrategy, List<Entry>> GROUPS = new HashMap<>();
  private static final AtomicInteger IDS = new AtomicInteger();

  private EventLoops() {}

  private record Entry(EventLoop loop, AtomicInteger members) {}

  /** Where a member is served; {@link #close} takes it out. */
  public static final class Registration {
    private final Entry entry;
    private final EventLoop.Member member;
    private volatile boolean closed;

    private Registration(Entry entry, EventLoop.Member member) {
      this.entry = entry;
      this.member = member;
    }

    public EventLoop loop() {
      return entry.loop();
    }

    /** Makes the loop poll the member soon (after local work was queued for it). */
    public void poke() {
      entry.loop().execute(() -> entry.loop().makeHot(member));
    }

    /** The member leaves its loop; it hears {@link EventLoop.Member#removed} there. Idempotent. */
    public void close() {
      if (closed) {
        return;
      }
      closed = true;
      entry.loop().execute(() -> {
        entry.loop().deregister(member);
        entry.members().decrementAndGet();
      });
    }
  }

  /**
   * Starts serving {@code member} on a loop for {@code idle}: its ring is polled at once, its
   * socket watched (readable, hung up).
   */
  public static Registration register(EventLoop.Member member, int socketFd, IdleStrategy idle) {
    synchronized (LOCK) {
      List<Entry> loops = GROUPS.computeIfAbsent(idle, k -> new ArrayList<>());
      Entry best = null;
      for (Entry e : loops) {
        if (best == null || e.members().get() < best.members().get()) {
          best = e;
        }
      }
      if (best == null || (best.members().get() > 0 && loops.size() < LOOPS_PER_STRATEGY)) {
        EventLoop loop = new EventLoop("grpc-shm-loop-" + IDS.incrementAndGet(), idle);
        best = new Entry(loop, new AtomicInteger());
        loops.add(best);
        loop.start();
      }
      best.members().incrementAndGet();
      Entry chosen = best;
      chosen.loop().execute(() -> chosen.loop().register(member, socketFd));
      return new Registration(chosen, member);
    }
  }

  /**
   * Called by an idle loop before its thread ends: true (and no new member can reach it) unless
   * a registration raced in.
   */
  static boolean retire(EventLoop loop) {
    synchronized (LOCK) {
      if (loop.hasTasks()) {
        return false;
      }
      for (List<Entry> loops : GROUPS.values()) {
        loops.removeIf(e -> e.loop() == loop);
      }
      return true;
    }
  }

  /** Loop threads alive now (for tests and the benchmark). */
  public static int liveLoops() {
    synchronized (LOCK) {
      return GROUPS.values().stream().mapToInt(List::size).sum();
    }
  }
}
