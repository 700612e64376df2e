package io.grpcshm.internal.proto;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.management.ObjectName;

/**
 * Reusable off-heap blocks that large received protobuf messages are copied into and parsed from
 * with aliasing, instead of a new heap array the JVM would have to zero first.
 *
 * <p>A lent block belongs to the message with no release contract: {@link #lend} returns a
 * segment whose scope is a fresh automatic arena, and every view of it (the direct buffer
 * protobuf parses, the {@code bytes} fields it aliases as slices of that buffer, their
 * substrings and read-only buffers, {@code MemorySegment.ofBuffer} of any of them) references
 * that scope. When none is reachable any more the JDK's cleaner gives the block back. So a
 * message kept for ever keeps its block for ever, and blocks come back only as often as the
 * garbage collector runs.
 *
 * <p>Blocks are page-aligned, allocated (and so zeroed and faulted in) once, in size classes of
 * eight steps per power of two from 4 MiB (at most 12.5 % slack). The total of all blocks, lent
 * or free, never exceeds the cap: when a class has no free block and the cap leaves no room even
 * after freeing blocks of other classes unused for 10 s, {@link #lend} returns null and the
 * caller uses the heap. It never waits. A free block unused for {@link #TRIM_AFTER_NANOS} is
 * freed, so a process that stops receiving large messages gives the memory back.
 */
final class ReceiveBlockPool {
  private static final Logger log = Logger.getLogger(ReceiveBlockPool.class.getName());
  private static final long MIB = 1 << 20;
  static final long MIN_CLASS = 4 * MIB;
  private static final int STEPS_PER_DOUBLING = 8;
  private static final long PAGE = 4096;
  /** System property: the cap in bytes (0 turns the pool off: every large message uses heap). */
  static final String CAP_PROPERTY = "io.grpcshm.protobufReceivePoolBytes";

  /** Made at the first large message: until then JMX and the cap's lookup cost nothing. */
  private static final class Shared {
    static final ReceiveBlockPool POOL = registered(new ReceiveBlockPool(configuredCap()));
  }

  /** The process's pool, used by every {@link CopyOnceMarshaller}. */
  static ReceiveBlockPool shared() {
    return Shared.POOL;
  }

  /**
   * A free block is freed for another class only after this long unused: blocks come back in
   * bursts (at collections), and freeing one that the next burst needs again would cost a new
   * allocation (zeroing, page faults) and an arena close in the calls of both classes.
   */
  static final long IDLE_BEFORE_RELEASE_NANOS = 10_000_000_000L;

  private static final class Block {
    final Arena arena;
    final MemorySegment memory;
    /** When it last came back ({@link System#nanoTime()}). */
    long freeSince;

    Block(long size) {
      Arena a = Arena.ofShared();
      try {
        memory = a.allocate(size, PAGE);
      } catch (RuntimeException | Error e) {
        a.close();
        throw e;
      }
      arena = a;
    }
  }

  private final long capBytes;
  /** Free blocks by class size, each stack most recently returned last. */
  private final TreeMap<Long, ArrayDeque<Block>> free = new TreeMap<>();
  private long residentBytes;
  private long lentBytes;
  private long lentCount;
  private long reusedCount;
  private long refusedCount;
  private long returnedCount;
  private long releasedCount;

  private final long idleBeforeReleaseNanos;
  /** Free blocks unused this long are freed (an idle process keeps nothing); MAX_VALUE: never. */
  private final long trimAfterNanos;
  /** Whether a trim is scheduled (at most one at a time). */
  private boolean trimScheduled;

  /** How long a free block may stay unused before it is freed. */
  static final long TRIM_AFTER_NANOS = 10_000_000_000L;

  ReceiveBlockPool(long capBytes) {
    this(capBytes, IDLE_BEFORE_RELEASE_NANOS, TRIM_AFTER_NANOS);
  }

  /** Without idle trimming (tests of reuse). */
  ReceiveBlockPool(long capBytes, long idleBeforeReleaseNanos) {
    this(capBytes, idleBeforeReleaseNanos, Long.MAX_VALUE);
  }

  ReceiveBlockPool(long capBytes, long idleBeforeReleaseNanos, long trimAfterNanos) {
    if (capBytes < 0 || idleBeforeReleaseNanos < 0 || trimAfterNanos < 0) {
      throw new IllegalArgumentException("cap " + capBytes + ", idle " + idleBeforeReleaseNanos
          + ", trim " + trimAfterNanos);
    }
    this.capBytes = capBytes;
    this.idleBeforeReleaseNanos = idleBeforeReleaseNanos;
    this.trimAfterNanos = trimAfterNanos;
  }

  /** The size of the block that holds {@code size} bytes. */
  static long classSize(long size) {
    if (size <= MIN_CLASS) {
      return MIN_CLASS;
    }
    long power = Long.highestOneBit(size - 1); // size lies in (power, 2 * power]
    long step = power / STEPS_PER_DOUBLING;
    return (size + step - 1) / step * step;
  }

  /**
   * {@code size} bytes of a pooled block (contents undefined), owned by the returned segment's
   * scope; or null when the cap leaves no room (or memory could not be allocated).
   */
  MemorySegment lend(long size) {
    long cls = classSize(size);
    Block block;
    List<Block> released = List.of();
    synchronized (this) {
      ArrayDeque<Block> stack = free.get(cls);
      block = stack == null ? null : stack.pollLast();
      if (block != null) {
        reusedCount++;
      } else {
        if (residentBytes + cls > capBytes) {
          released = releaseIdleBlocksFor(cls, System.nanoTime());
        }
        if (residentBytes + cls > capBytes) {
          refusedCount++;
          return null;
        }
        residentBytes += cls; // reserved while allocating outside the lock
      }
      lentBytes += cls;
      lentCount++;
    }
    for (Block b : released) {
      b.arena.close();
    }
    if (block == null) {
      try {
        block = new Block(cls);
      } catch (OutOfMemoryError | RuntimeException e) {
        synchronized (this) {
          residentBytes -= cls;
          lentBytes -= cls;
          lentCount--;
          refusedCount++;
        }
        log.log(Level.FINE, "no off-heap receive block of " + cls + " bytes; using the heap", e);
        return null;
      }
    }
    Block lent = block;
    return lent.memory.reinterpret(size, Arena.ofAuto(), unused -> giveBack(lent));
  }

  /**
   * Takes free blocks of other classes, unused for {@link #idleBeforeReleaseNanos}, out of the
   * pool until {@code cls} fits the cap; none if the idle ones are not enough.
   */
  private List<Block> releaseIdleBlocksFor(long cls, long now) {
    long idleBytes = 0;
    for (ArrayDeque<Block> stack : free.values()) {
      for (Block b : stack) {
        if (now - b.freeSince >= idleBeforeReleaseNanos) {
          idleBytes += b.memory.byteSize();
        }
      }
    }
    if (residentBytes - idleBytes + cls > capBytes) {
      return List.of();
    }
    List<Block> released = new ArrayList<>();
    // Largest first: fewest blocks to give up. Each stack's least recently returned first.
    for (ArrayDeque<Block> stack : free.descendingMap().values()) {
      while (residentBytes + cls > capBytes && !stack.isEmpty()
          && now - stack.peekFirst().freeSince >= idleBeforeReleaseNanos) {
        Block b = stack.pollFirst();
        released.add(b);
        residentBytes -= b.memory.byteSize();
        releasedCount++;
      }
    }
    free.values().removeIf(ArrayDeque::isEmpty);
    return released;
  }

  private synchronized void giveBack(Block block) {
    long size = block.memory.byteSize();
    lentBytes -= size;
    returnedCount++;
    block.freeSince = System.nanoTime();
    free.computeIfAbsent(size, k -> new ArrayDeque<>()).addLast(block);
    scheduleTrim();
  }

  @GuardedBy("this")
  private void scheduleTrim() {
    if (trimScheduled || trimAfterNanos == Long.MAX_VALUE) {
      return;
    }
    trimScheduled = true;
    // The JDK's shared delay scheduler: no thread of ours waits for an idle pool.
    CompletableFuture.delayedExecutor(trimAfterNanos, TimeUnit.NANOSECONDS).execute(this::trim);
  }

  /** Frees the free blocks unused for {@link #trimAfterNanos}; runs again while any are left. */
  void trim() {
    List<Block> released = new ArrayList<>();
    synchronized (this) {
      trimScheduled = false;
      long now = System.nanoTime();
      for (ArrayDeque<Block> stack : free.values()) {
        while (!stack.isEmpty() && now - stack.peekFirst().freeSince >= trimAfterNanos) {
          Block b = stack.pollFirst();
          released.add(b);
          residentBytes -= b.memory.byteSize();
          releasedCount++;
        }
      }
      free.values().removeIf(ArrayDeque::isEmpty);
      if (!free.isEmpty()) {
        scheduleTrim();
      }
    }
    for (Block b : released) {
      b.arena.close();
    }
  }

  long capBytes() {
    return capBytes;
  }

  synchronized long residentBytes() {
    return residentBytes;
  }

  synchronized long lentBytes() {
    return lentBytes;
  }

  synchronized Stats stats() {
    return new Stats(capBytes, residentBytes, lentBytes, lentCount, reusedCount, refusedCount,
        returnedCount, releasedCount);
  }

  /**
   * A snapshot. {@code lent}: blocks handed out (of which {@code reused} came from the free
   * stacks); {@code refused}: requests left to the heap; {@code returned}: blocks given back once
   * unreachable; {@code released}: free blocks freed (room for another class, or unused).
   */
  record Stats(long capBytes, long residentBytes, long lentBytes, long lent, long reused,
      long refused, long returned, long released) {}

  /** Monitoring view (JMX, {@code io.grpcshm:type=ProtobufReceivePool}). */
  public interface ProtobufReceivePoolMXBean {
    long getCapBytes();

    long getResidentBytes();

    long getLentBytes();

    long getLent();

    long getReused();

    long getRefused();

    long getReturned();

    long getReleased();
  }

  private static ReceiveBlockPool registered(ReceiveBlockPool pool) {
    ProtobufReceivePoolMXBean bean = new ProtobufReceivePoolMXBean() {
      @Override
      public long getCapBytes() {
        return pool.capBytes;
      }

      @Override
      public long getResidentBytes() {
        return pool.stats().residentBytes();
      }

      @Override
      public long getLentBytes() {
        return pool.stats().lentBytes();
      }

      @Override
      public long getLent() {
        return pool.stats().lent();
      }

      @Override
      public long getReused() {
        return pool.stats().reused();
      }

      @Override
      public long getRefused() {
        return pool.stats().refused();
      }

      @Override
      public long getReturned() {
        return pool.stats().returned();
      }

      @Override
      public long getReleased() {
        return pool.stats().released();
      }
    };
    try {
      ManagementFactory.getPlatformMBeanServer().registerMBean(bean,
          new ObjectName("io.grpcshm:type=ProtobufReceivePool"));
    } catch (Exception | LinkageError e) {
      log.log(Level.FINE, "receive pool not registered with JMX", e);
    }
    return pool;
  }

  /**
   * {@value #CAP_PROPERTY} if set, else a quarter of the JVM's direct-memory limit (which
   * defaults to the maximum heap), at most 512 MiB.
   */
  private static long configuredCap() {
    String configured = System.getProperty(CAP_PROPERTY);
    if (configured != null) {
      try {
        return Math.max(0, Long.parseLong(configured.trim()));
      } catch (NumberFormatException e) {
        log.warning(CAP_PROPERTY + "=" + configured
            + " is not a number of bytes; using the default");
      }
    }
    long maxDirect = Runtime.getRuntime().maxMemory();
    try {
      long option = Long.parseLong(ManagementFactory.getPlatformMXBean(
          com.sun.management.HotSpotDiagnosticMXBean.class)
          .getVMOption("MaxDirectMemorySize").getValue());
      if (option > 0) {
        maxDirect = option;
      }
    } catch (RuntimeException | LinkageError e) {
      // Not HotSpot: the heap limit stands in.
    }
    return Math.min(512 * MIB, maxDirect / 4);
  }
}
