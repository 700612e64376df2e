package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.IdxdSysfs;
import io.grpcshm.dsa.internal.Idxd;
import io.grpcshm.dsa.internal.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A DSA user work queue opened as {@code /dev/dsa/wqX.Y}; descriptors go in with write(2)
 * (Linux >= 6.10, commit 6827738dc684), which needs no CAP_SYS_RAWIO, unlike the mmap'ed portal.
 */
final class DsaPortal implements Portal {
  private final IdxdSysfs.WorkQueue wq;
  private final int fd;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment errnoSlot;
  private boolean closed;

  DsaPortal(IdxdSysfs.WorkQueue wq, int fd) {
    this.wq = wq;
    this.fd = fd;
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
    int errno = n < 0 ? (int) -n : Libc.EINVAL;
    if (errno == Libc.EAGAIN || errno == Libc.EBUSY) {
      return RETRY;
    }
    int opcode = desc.get(java.lang.foreign.ValueLayout.JAVA_BYTE, Idxd.DESC_OPCODE) & 0xFF;
    if (errno == Libc.EINVAL && opcode == Idxd.OP_BATCH) {
      return BATCH_UNSUPPORTED;
    }
    return -errno;
  }

  @Override
  public long maxTransferSize() { return wq.maxTransferSize(); }

  @Override
  public int maxBatchSize() { return wq.maxBatchSize(); }

  @Override
  public boolean cacheControl() { return wq.device() != null && wq.device().cacheControl(); }

  /** A dedicated queue silently drops descriptors beyond its size: never exceed it. */
  @Override
  public int maxInFlight() { return wq.shared() ? Integer.MAX_VALUE : Math.max(1, wq.size()); }

  @Override
  public String describe() {
    return "Intel DSA " + wq + " via write() on " + wq.devNode();
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      Libc.close(fd);
      arena.close();
    }
  }
}
