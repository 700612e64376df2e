package io.grpcshm.dsa.internal;

import static io.grpcshm.dsa.internal.Idxd.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.jctools.queues.atomic.MpmcAtomicArrayQueue;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A copy engine made of worker threads that behaves like a DSA work queue: submitters hand it
 * 64-byte {@code dsa_hw_desc} descriptors (copied into a bounded queue, so the submitter may
 * reuse its descriptor at once, as after a portal write), workers execute NOOP, MEMMOVE,
 * MEMFILL, COMPARE and BATCH (honouring FENCE) and write 32-byte completion records with the
 * status byte stored last, with release semantics. A full queue refuses the descriptor
 * ({@link #submit} returns false: retry later), like a full shared DSA work queue.
 *
 * <p>It is not an accelerator: it spends CPU cores so that the caller's thread can overlap its
 * own work with the copy. Transfers of at least twice {@code chunkBytes} are split into chunks
 * that idle workers help with.
 *
 * <p>Unsupported opcodes (DRAIN, DIF, CRC, ...) complete with BAD_OPCODE. Within a batch the
 * sub-descriptors execute in order on one worker, which satisfies FENCE trivially; after a
 * failed sub-descriptor, a FENCE'd one and all later ones are not executed (their records stay
 * zero), as on the device.
 */
public final class SoftwareCopyEngine implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(SoftwareCopyEngine.class.getName());
  /** Largest xfer_size accepted; DSA's usual max_transfer_size is 2 GiB as well. */
  public static final long MAX_TRANSFER_SIZE = 1L << 31;
  public static final int MAX_BATCH_SIZE = 1024;
  /** Idle workers spin this long before parking: a parked worker costs a futex wake-up. */
  private static final long SPIN_NANOS_BEFORE_PARK = TimeUnit.MICROSECONDS.toNanos(200);
  private static final long PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(1);

  /** Lifecycle, with checked transitions. */
  public enum State {
    RUNNING, CLOSING, CLOSED;

    boolean canMoveTo(State next) {
      return next.ordinal() == ordinal() + 1;
    }
  }

  private final int workerCount;
  private final long chunkBytes;
  private final Arena arena = Arena.ofShared();
  private final EngineFaults faults;
  private volatile State state = State.RUNNING;

  /**
   * The work queue: {@code capacity} 64-byte slots of native memory, each either free or
   * queued. A submitter takes a free slot (none: the queue is full), copies the descriptor into
   * it and queues it; a worker takes a queued slot, copies it out and frees it. Two bounded MPMC
   * queues of slots, so nothing is allocated per descriptor.
   */
  private final int capacity;
  private final MpmcAtomicArrayQueue<MemorySegment> freeSlots;
  private final MpmcAtomicArrayQueue<MemorySegment> queued;

  /** A piece of a split MEMMOVE that any worker may copy; recycled like the slots. */
  private static final class Chunk {
    long src;
    long dst;
    long len;
    int owner;
  }

  private static final int CHUNK_CAPACITY = 1024;
  private final MpmcAtomicArrayQueue<Chunk> freeChunks;
  private final MpmcAtomicArrayQueue<Chunk> chunks;
  private final AtomicInteger[] pendingChunks;

  private final Thread[] threads;
  private final AtomicIntegerArray sleeping;
  private final AtomicInteger sleepers = new AtomicInteger();
  private final AtomicLong executed = new AtomicLong();

  /**
   * @param workers worker threads (at least 1)
   * @param queueDepth work-queue slots, rounded up to a power of two
   * @param chunkBytes split granularity for large MEMMOVEs (only with 2+ workers)
   */
  public SoftwareCopyEngine(int workers, int queueDepth, long chunkBytes) {
    this(workers, queueDepth, chunkBytes, EngineFaults.NONE);
  }

  /** An engine that fails where {@code faults} says (tests of failure handling). */
  public SoftwareCopyEngine(int workers, int queueDepth, long chunkBytes, EngineFaults faults) {
    if (workers < 1 || queueDepth < 1 || chunkBytes < 4096) {
      throw new IllegalArgumentException("workers >= 1, queueDepth >= 1, chunkBytes >= 4096");
    }
    this.workerCount = workers;
    this.chunkBytes = chunkBytes;
    this.faults = java.util.Objects.requireNonNull(faults, "faults");
    this.capacity = Integer.highestOneBit(Math.max(2, queueDepth) * 2 - 1);
    MemorySegment slots = arena.allocate((long) capacity * DESC_SIZE, DESC_ALIGN);
    this.freeSlots = new MpmcAtomicArrayQueue<>(capacity);
    this.queued = new MpmcAtomicArrayQueue<>(capacity);
    for (int i = 0; i < capacity; i++) {
      freeSlots.offer(slots.asSlice((long) i * DESC_SIZE, DESC_SIZE));
    }
    this.freeChunks = new MpmcAtomicArrayQueue<>(CHUNK_CAPACITY);
    this.chunks = new MpmcAtomicArrayQueue<>(CHUNK_CAPACITY);
    for (int i = 0; i < CHUNK_CAPACITY; i++) {
      freeChunks.offer(new Chunk());
    }
    this.pendingChunks = new AtomicInteger[workers];
    this.sleeping = new AtomicIntegerArray(workers);
    this.threads = new Thread[workers];
    for (int i = 0; i < workers; i++) {
      pendingChunks[i] = new AtomicInteger();
      Worker w = new Worker(i, arena);
      threads[i] = Thread.ofPlatform().daemon().name("dsa-swengine-" + i).unstarted(w);
    }
    for (Thread t : threads) {
      t.start();
    }
  }

  public int workers() { return workerCount; }

  public int queueCapacity() { return capacity; }

  public long chunkBytes() { return chunkBytes; }

  public State state() { return state; }

  /** Whether injected faults keep the workers from taking descriptors. */
  public boolean workersPaused() { return faults.paused(); }

  /** Descriptors executed so far (batches count once). */
  public long executed() { return executed.get(); }

  /**
   * Enqueues a copy of the 64-byte descriptor at {@code desc[offset]}.
   *
   * @return false if the queue is full (retry later); the descriptor was not taken
   * @throws IllegalArgumentException if CRAV is set with a completion address that is not
   *     32-byte aligned (the kernel's write() path rejects this with EINVAL too)
   * @throws IllegalStateException after {@link #close()}
   */
  public boolean submit(MemorySegment desc, long offset) {
    if (state != State.RUNNING) {
      throw new IllegalStateException("software copy engine is " + state);
    }
    int flagsOp = desc.get(Descriptor.U32, offset + DESC_FLAGS);
    long cr = desc.get(Descriptor.U64, offset + DESC_COMPLETION_ADDR);
    if ((flagsOp & FLAG_CRAV) != 0 && (cr & (CR_ALIGN - 1)) != 0) {
      throw new IllegalArgumentException("completion record address not 32-byte aligned");
    }
    if (faults.takeQueueFull()) {
      return false;
    }
    MemorySegment slot = freeSlots.poll();
    if (slot == null) {
      return false;
    }
    MemorySegment.copy(desc, offset, slot, 0, DESC_SIZE);
    queued.offer(slot); // cannot fail: there are no more slots than room
    // Orders the queued slot before the sleepers load (a worker increments sleepers, then
    // checks the queue): without it both could miss the other and the wake-up waits a park.
    VarHandle.fullFence();
    if (sleepers.get() > 0) {
      wakeOne();
    }
    return true;
  }

  private void wakeOne() {
    for (int i = 0; i < workerCount; i++) {
      if (sleeping.get(i) != 0) {
        LockSupport.unpark(threads[i]);
        return;
      }
    }
  }

  private boolean dequeue(MemorySegment into) {
    MemorySegment slot = queued.poll();
    if (slot == null) {
      return false;
    }
    MemorySegment.copy(slot, 0, into, 0, DESC_SIZE);
    freeSlots.offer(slot);
    return true;
  }

  private boolean queueEmpty() {
    return queued.isEmpty() && chunks.isEmpty();
  }

  private boolean pushChunk(long src, long dst, long len, int owner) {
    Chunk c = freeChunks.poll();
    if (c == null) {
      return false;
    }
    c.src = src;
    c.dst = dst;
    c.len = len;
    c.owner = owner;
    chunks.offer(c);
    return true;
  }

  /** Runs one queued chunk (anyone's); returns false if there was none. */
  private boolean runChunk() {
    Chunk c = chunks.poll();
    if (c == null) {
      return false;
    }
    long src = c.src;
    long dst = c.dst;
    long len = c.len;
    int owner = c.owner;
    freeChunks.offer(c);
    Memory.copy(src, dst, len);
    pendingChunks[owner].decrementAndGet(); // full fence: publishes the bytes to the owner
    return true;
  }

  private final class Worker implements Runnable {
    final int id;
    final MemorySegment local;
    final MemorySegment sub;
    final Descriptor desc = new Descriptor();
    final Descriptor subDesc = new Descriptor();
    final CompletionRecord rec = new CompletionRecord();

    Worker(int id, Arena arena) {
      this.id = id;
      this.local = arena.allocate(DESC_SIZE, DESC_ALIGN);
      this.sub = arena.allocate(DESC_SIZE, DESC_ALIGN);
      desc.wrap(local, 0);
      subDesc.wrap(sub, 0);
    }

    @Override
    public void run() {
      long idleSince = 0;
      while (state == State.RUNNING) {
        if (runChunk()) {
          idleSince = 0;
          continue;
        }
        if (!faults.paused() && dequeue(local)) {
          try {
            execute(this, desc, false);
          } catch (Throwable t) {
            // A bug here must not kill the engine silently: log and keep serving.
            LOG.log(Level.SEVERE, "software copy engine worker failed", t);
          }
          executed.incrementAndGet();
          idleSince = 0;
          continue;
        }
        long now = System.nanoTime();
        if (idleSince == 0) {
          idleSince = now;
        }
        if (now - idleSince < SPIN_NANOS_BEFORE_PARK) {
          Thread.onSpinWait();
          continue;
        }
        sleeping.set(id, 1);
        sleepers.incrementAndGet();
        if (queueEmpty() || faults.paused()) {
          LockSupport.parkNanos(SoftwareCopyEngine.this, PARK_NANOS);
        }
        sleepers.decrementAndGet();
        sleeping.set(id, 0);
        idleSince = 0;
      }
    }
  }

  /** Executes one descriptor and writes its completion record; returns the status code. */
  private int execute(Worker w, Descriptor d, boolean inBatch) {
    final int op = d.opcode();
    final int flags = d.flags();
    final long cr = d.completionAddr();
    int status;
    int result = 0;
    long done = 0;
    long faultAddr = 0;
    if (!inBatch && faults.takeLose()) {
      return COMP_NONE; // dropped: no execution, no record
    }
    if (faults.takeBadOpcode()) {
      status = COMP_BAD_OPCODE;
    } else {
      switch (op) {
        case OP_NOOP -> status = COMP_SUCCESS;
        case OP_MEMMOVE -> {
          long src = d.srcAddr();
          long dst = d.dstAddr();
          long len = d.xferSize();
          long k = (flags & FLAG_BOF) == 0 ? faults.takePageFault(len) : -1;
          long x = k < 0 ? faults.takeRecordFault(len) : -1;
          if (x >= 0) {
            Memory.copy(src, dst, x);
            done = x;
            faultAddr = cr;
            status = COMP_CRA_XLAT;
          } else if (k >= 0) {
            Memory.copy(src, dst, k);
            done = k;
            boolean onWrite = faults.pageFaultOnWrite();
            faultAddr = (onWrite ? dst : src) + k;
            status = COMP_PAGE_FAULT_NOBOF | (onWrite ? STATUS_WRITE : 0);
          } else {
            copy(w, src, dst, len);
            done = len;
            status = COMP_SUCCESS;
          }
        }
        case OP_MEMFILL -> {
          Memory.fill(d.dstAddr(), d.xferSize(), d.srcAddr());
          done = d.xferSize();
          status = COMP_SUCCESS;
        }
        case OP_COMPARE -> {
          long len = d.xferSize();
          long m = Memory.mismatch(d.srcAddr(), d.dstAddr(), len);
          result = m < 0 ? 0 : 1;
          done = m < 0 ? len : m;
          status = COMP_SUCCESS;
        }
        case OP_BATCH -> {
          if (inBatch) {
            status = COMP_BAD_OPCODE; // no nested batches on the device either
          } else {
            long list = d.srcAddr();
            long count = d.xferSize();
            if (count < 2 || count > MAX_BATCH_SIZE) {
              status = COMP_DESC_CNT_ERANGE;
            } else if ((list & (DESC_ALIGN - 1)) != 0) {
              status = COMP_DESCLIST_ALIGN;
            } else {
              boolean failed = false;
              int completed = 0;
              int listFault = faults.takeBatchPageFault(count);
              for (int i = 0; i < count; i++) {
                if (i == listFault) {
                  faultAddr = list + (long) i * DESC_SIZE;
                  break;
                }
                // Read each sub-descriptor once into private memory, then trust only that copy.
                MemorySegment.copy(Memory.ALL, list + (long) i * DESC_SIZE, w.sub, 0, DESC_SIZE);
                if (failed && (w.subDesc.flags() & FLAG_FENCE) != 0) {
                  break;
                }
                if (execute(w, w.subDesc, true) == COMP_SUCCESS) {
                  completed++;
                } else {
                  failed = true;
                }
              }
              done = completed;
              status = listFault >= 0 ? COMP_BATCH_PAGE_FAULT
                  : failed ? COMP_BATCH_FAIL : COMP_SUCCESS;
            }
          }
        }
        default -> status = COMP_BAD_OPCODE;
      }
    }
    boolean ok = (status & STATUS_MASK) == COMP_SUCCESS;
    if ((flags & FLAG_CRAV) != 0 && (!ok || (flags & FLAG_RCR) != 0)) {
      w.rec.wrap(Memory.ALL, cr).fields(result, done, faultAddr, 0).statusRelease(status);
    }
    return status & STATUS_MASK;
  }

  /** Copies, splitting across idle workers when it pays. */
  private void copy(Worker w, long src, long dst, long len) {
    if (workerCount < 2 || len < 2 * chunkBytes) {
      Memory.copy(src, dst, len);
      return;
    }
    // Enough chunks to let every worker help, not so many that queue traffic dominates.
    long chunk = Math.max(chunkBytes, (len / (workerCount * 4L) + 4095) & ~4095L);
    AtomicInteger pending = pendingChunks[w.id];
    for (long off = chunk; off < len; off += chunk) {
      long n = Math.min(chunk, len - off);
      pending.incrementAndGet();
      if (!pushChunk(src + off, dst + off, n, w.id)) {
        pending.decrementAndGet();
        Memory.copy(src + off, dst + off, n);
      }
    }
    if (sleepers.get() > 0) {
      for (int i = 0; i < workerCount; i++) {
        if (i != w.id && sleeping.get(i) != 0) {
          LockSupport.unpark(threads[i]);
        }
      }
    }
    Memory.copy(src, dst, Math.min(chunk, len));
    while (pending.get() > 0) {
      if (!runChunk()) {
        Thread.onSpinWait();
      }
    }
    VarHandle.acquireFence(); // helpers' bytes happen-before our completion record
  }

  /** Stops and joins the workers, then frees the queue memory. Idempotent. */
  @Override
  public void close() {
    synchronized (this) {
      if (state != State.RUNNING) {
        return;
      }
      transition(State.CLOSING);
    }
    boolean joined = true;
    for (Thread t : threads) {
      LockSupport.unpark(t);
    }
    for (Thread t : threads) {
      try {
        t.join(5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      joined &= !t.isAlive();
    }
    if (joined) {
      arena.close();
    } else {
      // Freeing memory a worker may still touch would crash the JVM; leak it instead.
      LOG.warning("software copy engine workers did not stop within 5 s; queue memory leaked");
    }
    synchronized (this) {
      transition(State.CLOSED);
    }
  }

  private void transition(State next) {
    if (!state.canMoveTo(next)) {
      throw new IllegalStateException("engine state " + state + " -> " + next);
    }
    state = next;
  }
}
