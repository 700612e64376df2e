package io.grpcshm.internal.nativeio;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One shared mapping of a memory file, and the rule for when its addresses may be unmapped
 * (docs/ARCHITECTURE.md, "Shared-memory lifetimes").
 *
 * <p>Java code reaches the memory through {@link #memory()}, a segment of a shared arena:
 * {@link #close()} closes the arena, after which every access through a segment or a
 * {@code ByteBuffer} view throws. But raw addresses escape that guard: protobuf reads aliased
 * direct buffers through {@code sun.misc.Unsafe}, and data movers (the software engine, a DSA
 * device) copy by address. Unmapping under such a reader kills the process with SIGSEGV. So:
 *
 * <ul>
 *   <li>a mapping whose addresses never escaped ({@link #markAliased()} never called) is unmapped
 *       at {@link #close()};
 *   <li>an aliased one is <em>replaced</em> at {@link #close()}: private, zero-filled pages are
 *       mapped over the same addresses in one {@code mmap(MAP_FIXED)}, so the shared pages go
 *       back to the kernel at once, a late raw read sees zeros and a late raw write lands in a
 *       private page nobody reads. The placeholder is unmapped by a {@link Cleaner} once the
 *       arena's scope is unreachable, i.e. once no segment or {@code ByteBuffer} view of it is
 *       left (every view holds the scope);
 *   <li>{@link #pinForever()} (a mover that could not be stopped may still write): the placeholder
 *       is never unmapped.
 * </ul>
 *
 * A mover must not be writing when a non-aliased mapping closes: the connection waits for its
 * moves in flight before it closes its mappings.
 */
public final class SharedMapping implements AutoCloseable {
  private static final Logger log = Logger.getLogger(SharedMapping.class.getName());
  private static final Cleaner UNMAPPER = Cleaner.create(r -> {
    Thread t = new Thread(r, "grpc-shm-unmapper");
    t.setDaemon(true);
    return t;
  });
  private static final AtomicInteger PLACEHOLDERS = new AtomicInteger();
  /** Address ranges this process holds through us: mapped, or placeholders not yet unmapped. */
  private static final AtomicInteger LIVE = new AtomicInteger();
  /**
   * The most ranges we may hold: the kernel's per-process limit on mappings
   * ({@code vm.max_map_count}, 65,530 by default) is shared with the JVM, whose heap, threads and
   * code need mappings too and abort the process when one fails. We take at most half of it
   * ({@code -Dio.grpcshm.maxMappings=N} to change). See PROTOCOL.md, "Limits".
   */
  private static final int LIMIT = Integer.getInteger("io.grpcshm.maxMappings",
      Math.max(256, readMaxMapCount() / 2));
  /** The scopes of the mappings open now: every view of one of them carries its scope. */
  private static final java.util.Set<MemorySegment.Scope> OPEN_SCOPES =
      java.util.concurrent.ConcurrentHashMap.newKeySet();

  private final long address;
  private final long size;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment memory;
  private volatile boolean aliased;
  private volatile boolean pinned;

  private SharedMapping(long address, long size) {
    this.address = address;
    this.size = size;
    this.memory = MemorySegment.ofAddress(address).reinterpret(size, arena, ignored -> retire());
    LIVE.incrementAndGet();
    OPEN_SCOPES.add(memory.scope());
  }

  /**
   * Whether {@code segment} (e.g. {@code MemorySegment.ofBuffer} of a received buffer) is a view
   * of a shared mapping of this process that is still open. Its accesses stay checked: they throw
   * once the mapping closes.
   */
  public static boolean isOpenMapping(MemorySegment segment) {
    return OPEN_SCOPES.contains(segment.scope());
  }

  /** Mappings (and placeholders) held now. */
  public static int liveMappings() {
    return LIVE.get();
  }

  /** The most this process may hold; see {@link #LIMIT}. */
  public static int mappingLimit() {
    return LIMIT;
  }

  /** True if {@code count} more mappings stay within {@code share} of the limit (0 to 1]. */
  public static boolean hasRoom(int count, double share) {
    return LIVE.get() + count <= (long) (LIMIT * share);
  }

  private static int readMaxMapCount() {
    // Not Files.readString: it trusts the size /proc reports and returned "6" for "65530".
    try (var in = java.nio.file.Files.newInputStream(
        java.nio.file.Path.of("/proc/sys/vm/max_map_count"))) {
      return Integer.parseInt(new String(in.readAllBytes(),
          java.nio.charset.StandardCharsets.US_ASCII).trim());
    } catch (java.io.IOException | RuntimeException e) {
      return 65_530; // the kernel's default
    }
  }

  /** Maps {@code size} bytes of {@code fd}, shared and read-write. */
  public static SharedMapping map(int fd, long size) {
    return new SharedMapping(Linux.mmapShared(fd, size), size);
  }

  /** The mapped bytes; every access throws once the mapping is closed. */
  public MemorySegment memory() {
    return memory;
  }

  public long byteSize() {
    return size;
  }

  /** A raw address into this mapping may outlive {@link #close()} (a direct buffer was lent). */
  public void markAliased() {
    aliased = true;
  }

  /** A writer by raw address could not be stopped: keep the addresses mapped for good. */
  public void pinForever() {
    pinned = true;
    aliased = true;
  }

  /**
   * Gives the pages of {@code range} (a slice of {@link #memory()}) back to the kernel
   * ({@code MADV_REMOVE}: the file's pages are freed, for every process that maps them); the
   * range reads as zeros until written again. Only whole pages inside the range. The caller
   * guarantees that nobody uses the range meanwhile. Returns the bytes given back.
   */
  public long discard(MemorySegment range) {
    long start = range.address();
    long end = start + range.byteSize();
    if (start < address || end > address + size) {
      throw new IllegalArgumentException("range outside the mapping");
    }
    long from = (start + PAGE - 1) & -PAGE;
    long to = end & -PAGE;
    if (to <= from || !arena.scope().isAlive()) {
      return 0;
    }
    int rc = Linux.madvise(from, to - from, Linux.MADV_REMOVE);
    if (rc != 0) {
      log.log(Level.FINE, "madvise(MADV_REMOVE) failed: errno {0}", -rc);
      return 0;
    }
    return to - from;
  }

  private static final long PAGE = 4096;

  /** Placeholders waiting for their last view to become unreachable, or pinned (for tests). */
  public static int placeholders() {
    return PLACEHOLDERS.get();
  }

  /** Ends Java access and gives the shared pages back. Idempotent. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      try {
        arena.close();
      } catch (IllegalStateException alreadyClosed) {
        // Closed concurrently by another thread: its close did the work.
      }
    }
  }

  /** The arena's cleanup action: runs once, while the scope is still strongly reachable. */
  private void retire() {
    OPEN_SCOPES.remove(memory.scope());
    if (!aliased) {
      Linux.munmap(address, size);
      LIVE.decrementAndGet();
      return;
    }
    try {
      Linux.mmapPlaceholder(address, size);
    } catch (NativeException e) {
      // Keeping the shared pages mapped is safe, only wasteful: never unmap under a reader.
      log.log(Level.WARNING, "cannot replace a retired shared mapping; it stays mapped", e);
      return;
    }
    PLACEHOLDERS.incrementAndGet();
    if (!pinned) {
      UNMAPPER.register(memory.scope(), new Unmap(address, size));
    }
  }

  /** Unmaps a placeholder; must not reference the mapping or its scope. */
  private record Unmap(long address, long size) implements Runnable {
    @Override
    public void run() {
      Linux.munmap(address, size);
      PLACEHOLDERS.decrementAndGet();
      LIVE.decrementAndGet();
    }
  }

  @Override
  public String toString() {
    return "SharedMapping{" + size + " bytes" + (aliased ? ", aliased" : "")
        + (arena.scope().isAlive() ? "" : ", closed") + "}";
  }
}
