package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.Idxd;
import io.grpcshm.dsa.internal.IdxdSysfs;
import io.grpcshm.dsa.internal.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * A DSA user work queue opened as {@code /dev/dsa/wqX.Y}; descriptors go in with write(2)
 * (commit 6827738dc684: mainline 6.10, stable 6.1.91, 6.8.10 and 6.9.1), which needs no
 * CAP_SYS_RAWIO, unlike the mmap'ed portal on devices where user submission is not safe.
 */
final class DsaPortal implements Portal {
  private final IdxdSysfs.WorkQueue wq;
  private final int fd;
  private final Path sysfsRoot;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment errnoSlot;
  private boolean closed;

  /** @param sysfsRoot where {@code wq} was found; re-read when completions stop coming */
  DsaPortal(IdxdSysfs.WorkQueue wq, int fd, Path sysfsRoot) {
    this.wq = wq;
    this.fd = fd;
    this.sysfsRoot = sysfsRoot;
    this.errnoSlot = Libc.newErrnoSlot(arena);
  }

  /** Serialised: the errno capture slot is shared; an uncontended monitor allocates nothing. */
  @Override
  public synchronized int submit(MemorySegment desc) {
    if (closed) {
      throw new IllegalStateException("DSA work queue " + wq.name() + " is closed");
    }
    long n = Libc.write(errnoSlot, fd, desc, Idxd.DESC_SIZE);
    if (n == Idxd.DESC_SIZE) {
      return ACCEPTED;
    }
    return classify(n < 0 ? (int) -n : Libc.EINVAL,
        desc.get(ValueLayout.JAVA_BYTE, Idxd.DESC_OPCODE) & 0xFF);
  }

  /**
   * What a failed write() means, as idxd_cdev_write() returns it: EAGAIN when ENQCMDS found a
   * shared queue full (a dedicated queue never refuses: MOVDIR64B cannot fail, the queue drops
   * the overflow - see {@link #maxInFlight()}); EINVAL for a BATCH on a device where user
   * batches are unsafe, or for any descriptor on a kernel without the write() path. Nothing
   * answers EBUSY, so it is an error like any other.
   */
  static int classify(int errno, int opcode) {
    if (errno == Libc.EAGAIN) {
      return RETRY;
    }
    if (errno == Libc.EINVAL && opcode == Idxd.OP_BATCH) {
      return BATCH_UNSUPPORTED;
    }
    return -errno;
  }

  @Override
  public long maxTransferSize() { return wq.maxTransferSize(); }

  /** 0 when the queue may not run BATCH (op_cap or op_config lacks it). */
  @Override
  public int maxBatchSize() { return wq.batches() ? wq.maxBatchSize() : 0; }

  @Override
  public boolean cacheControl() { return wq.device() != null && wq.device().cacheControl(); }

  /** A dedicated queue silently drops descriptors beyond its size: never exceed it. */
  @Override
  public int maxInFlight() { return wq.shared() ? Integer.MAX_VALUE : Math.max(1, wq.size()); }

  @Override
  public String describe() {
    return "Intel DSA " + wq + " via write() on " + wq.devNode();
  }

  /**
   * Device and queue state from sysfs, and whether the queue's fd is readable: the idxd driver
   * raises EPOLLIN there once the device has logged a software error (device-wide and sticky,
   * so only a diagnosis here, never a trigger).
   */
  @Override
  public synchronized String health() {
    String state = IdxdSysfs.currentState(sysfsRoot, wq);
    if (closed) {
      return state;
    }
    int revents = Libc.pollNow(fd, Libc.POLLIN);
    String fdState = revents < 0 ? "poll() on the queue fd failed: " + Libc.strerror(-revents)
        : (revents & Libc.POLLIN) != 0
            ? "software error signalled on the queue fd (EPOLLIN)"
            : "no software error signalled on the queue fd";
    return state + ", " + fdState;
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      Libc.close(fd); // the kernel drains our descriptors here
      arena.close();
    }
  }
}
