package io.grpcshm.dsa.internal;

/**
 * Where a {@link SoftwareCopyEngine} asks whether to fail the way a device can: tests inject an
 * implementation to exercise the code that handles mover failures; the engine otherwise runs
 * with {@link #NONE}. Each {@code take…} method is asked once per matching event and consumes
 * what it answers.
 */
public interface EngineFaults {
  /** No faults. */
  EngineFaults NONE = new EngineFaults() {};

  /** Refuse this submission as if the queue were full. */
  default boolean takeQueueFull() { return false; }

  /** Workers take no new descriptors (the queue then really fills up). */
  default boolean paused() { return false; }

  /** Accept this descriptor, then lose it: never executed, no completion record. */
  default boolean takeLose() { return false; }

  /** Complete this descriptor with BAD_OPCODE without executing it. */
  default boolean takeBadOpcode() { return false; }

  /**
   * For a MEMMOVE of {@code len} bytes without BOF: copy only this many bytes and complete with
   * PAGE_FAULT_NOBOF; -1 for no fault.
   */
  default long takePageFault(long len) { return -1; }

  /** Whether the page fault of {@link #takePageFault} is on the destination. */
  default boolean pageFaultOnWrite() { return false; }

  /**
   * For a BATCH of {@code count} descriptors: execute this many, then stop with
   * BATCH_PAGE_FAULT; -1 for no fault.
   */
  default int takeBatchPageFault(long count) { return -1; }

  /**
   * For a MEMMOVE of {@code len} bytes: copy this many bytes and complete with CRA_XLAT; -1 for
   * no fault.
   */
  default long takeRecordFault(long len) { return -1; }
}
