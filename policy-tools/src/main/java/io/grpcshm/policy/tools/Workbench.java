package io.grpcshm.policy.tools;

import io.grpcshm.dsa.Completion;
import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.MoverSession;
import io.grpcshm.dsa.WaitStrategy;
import io.grpcshm.policy.Candidate;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * Measures one candidate on one workload: a burst of {@code burst} messages, each produced
 * (the application fills the source: the work an async mode can overlap with the copy), copied
 * with the candidate's mover in its mode, and — when the receiver reuses the data at once —
 * read back by the caller. The figure is µs per message for the whole burst.
 */
final class Workbench {
  private Workbench() {}

  /** A ring of source/destination buffers, pre-faulted unless fresh. */
  static final class Ring implements AutoCloseable {
    final Arena arena = Arena.ofShared();
    final MemorySegment[] src;
    final MemorySegment[] dst;

    Ring(int n, long size, boolean prefault) {
      src = new MemorySegment[n];
      dst = new MemorySegment[n];
      for (int i = 0; i < n; i++) {
        src[i] = arena.allocate(size, 64);
        dst[i] = arena.allocate(size, 64);
        if (prefault) {
          src[i].fill((byte) 1);
          dst[i].fill((byte) 2);
        }
      }
    }

    @Override
    public void close() {
      arena.close();
    }
  }

  static long sink;

  /** The receiver touches every cache line of the message. */
  static void readBack(MemorySegment s) {
    long acc = 0;
    long n = s.byteSize();
    for (long off = 0; off + 8 <= n; off += 64) {
      acc += s.get(ValueLayout.JAVA_LONG, off);
    }
    sink += acc;
  }

  /** One burst; µs per message. With {@code fresh} the buffers are new (page faults count). */
  static double burst(MoverRegistry movers, Candidate c, Ring reused, long size, int burst,
      boolean fresh, boolean readBack, WaitStrategy wait) {
    DataMover m = movers.get(c.mover());
    Ring ring = fresh ? new Ring(burst, size, false) : reused;
    try {
      long t0 = System.nanoTime();
      switch (c.mode()) {
        case SYNC -> {
          for (int i = 0; i < burst; i++) {
            ring.src[i].fill((byte) i);
            m.copy(ring.src[i], 0, ring.dst[i], 0, size, c.cacheInjection(), wait);
            if (readBack) {
              readBack(ring.dst[i]);
            }
          }
        }
        case ASYNC -> {
          Completion prev = null;
          for (int i = 0; i < burst; i++) {
            ring.src[i].fill((byte) i);
            Completion cur = m.submit(ring.src[i], 0, ring.dst[i], 0, size, c.cacheInjection());
            if (prev != null) {
              finish(prev, wait);
              if (readBack) {
                readBack(ring.dst[i - 1]);
              }
            }
            prev = cur;
          }
          finish(prev, wait);
          if (readBack) {
            readBack(ring.dst[burst - 1]);
          }
        }
        case PIPELINED -> {
          try (MoverSession s = m.session(Mode.PIPELINED, wait)) {
            for (int i = 0; i < burst; i++) {
              ring.src[i].fill((byte) i);
              s.copy(ring.src[i], 0, ring.dst[i], 0, size, c.cacheInjection());
            }
            s.flush();
            s.drain();
          }
          if (readBack) {
            for (int i = 0; i < burst; i++) {
              readBack(ring.dst[i]);
            }
          }
        }
      }
      long t1 = System.nanoTime();
      return (t1 - t0) / 1000.0 / burst;
    } finally {
      if (fresh) {
        ring.close();
      }
    }
  }

  private static void finish(Completion c, WaitStrategy wait) {
    try {
      c.join(wait);
    } finally {
      c.release();
    }
  }

  /**
   * Other clients sharing the movers: each thread copies its own buffers of the same size with
   * the mover currently being measured, until closed (then joined).
   */
  static final class Clients implements AutoCloseable {
    private final List<Thread> threads = new ArrayList<>();
    private final List<Ring> rings = new ArrayList<>();
    private volatile boolean stop;
    volatile Candidate current;

    Clients(int n, MoverRegistry movers, long size, Candidate initial, WaitStrategy wait) {
      current = initial;
      for (int t = 0; t < n; t++) {
        Ring r = new Ring(1, size, true);
        rings.add(r);
        Thread th = Thread.ofPlatform().daemon().name("policy-client-" + t).unstarted(() -> {
          while (!stop) {
            Candidate c = current;
            movers.get(c.mover()).copy(r.src[0], 0, r.dst[0], 0, size, c.cacheInjection(), wait);
          }
        });
        threads.add(th);
      }
      threads.forEach(Thread::start);
    }

    @Override
    public void close() {
      stop = true;
      boolean interrupted = io.grpcshm.policy.internal.Threads.joinAll(threads);
      rings.forEach(Ring::close);
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
