package io.grpcshm.dsa.internal;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/** Faults a test arms for a {@link SoftwareCopyEngine}: each hits the next matching descriptor(s). */
public final class ArmedFaults implements EngineFaults {
  private final AtomicInteger badOpcode = new AtomicInteger();
  private final AtomicLong pageFaultAfter = new AtomicLong(-1);
  private volatile boolean pageFaultOnWrite;
  private final AtomicInteger queueFull = new AtomicInteger();
  private final AtomicInteger lose = new AtomicInteger();
  private final AtomicInteger batchPageFaultAfter = new AtomicInteger(-1);
  private final AtomicLong recordFaultAfter = new AtomicLong(-1);
  private volatile boolean paused;

  /** The next {@code n} descriptors complete with BAD_OPCODE without executing. */
  public void badOpcodeNext(int n) { badOpcode.set(n); }

  /**
   * The next MEMMOVE longer than {@code afterBytes} copies only that prefix and completes with
   * PAGE_FAULT_NOBOF, {@code bytes_completed = afterBytes} and the faulting address (the
   * destination's if {@code onWrite}, with the STATUS_WRITE bit) - unless it has BOF set.
   */
  public void pageFaultNext(long afterBytes, boolean onWrite) {
    pageFaultOnWrite = onWrite;
    pageFaultAfter.set(afterBytes);
  }

  /** The next {@code n} submissions are refused as if the queue were full. */
  public void queueFullNext(int n) { queueFull.set(n); }

  /** Stops workers from taking new descriptors (the queue then really fills up). */
  public void pauseWorkers(boolean pause) { paused = pause; }

  /**
   * The next {@code n} descriptors are accepted and then lost: not executed, no completion
   * record ever written - what a dedicated work queue that overflowed or a halted device does.
   */
  public void loseNext(int n) { lose.set(n); }

  /**
   * The next BATCH of more than {@code afterDescriptors} descriptors executes that many, then
   * stops as if the next page of its descriptor list were not mapped: BATCH_PAGE_FAULT with
   * {@code fault_addr} in the list and {@code bytes_completed} = descriptors completed; the rest
   * are not executed (their records stay zero).
   */
  public void batchPageFaultNext(int afterDescriptors) {
    batchPageFaultAfter.set(afterDescriptors);
  }

  /**
   * The next MEMMOVE longer than {@code afterBytes} copies that prefix and completes with
   * CRA_XLAT (completion record address translation) and {@code bytes_completed = afterBytes}.
   */
  public void completionRecordFaultNext(long afterBytes) { recordFaultAfter.set(afterBytes); }

  @Override
  public boolean paused() { return paused; }

  @Override
  public boolean pageFaultOnWrite() { return pageFaultOnWrite; }

  @Override
  public boolean takeBadOpcode() {
    return badOpcode.get() > 0 && badOpcode.getAndDecrement() > 0;
  }

  @Override
  public long takePageFault(long len) {
    long k = pageFaultAfter.get();
    if (k >= 0 && len > k && pageFaultAfter.compareAndSet(k, -1)) {
      return k;
    }
    return -1;
  }

  @Override
  public boolean takeQueueFull() {
    return queueFull.get() > 0 && queueFull.getAndDecrement() > 0;
  }

  @Override
  public boolean takeLose() {
    return lose.get() > 0 && lose.getAndDecrement() > 0;
  }

  @Override
  public int takeBatchPageFault(long count) {
    int k = batchPageFaultAfter.get();
    if (k >= 0 && count > k && batchPageFaultAfter.compareAndSet(k, -1)) {
      return k;
    }
    return -1;
  }

  @Override
  public long takeRecordFault(long len) {
    long k = recordFaultAfter.get();
    if (k >= 0 && len > k && recordFaultAfter.compareAndSet(k, -1)) {
      return k;
    }
    return -1;
  }
}
