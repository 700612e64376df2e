package io.grpcshm.dsa;

import java.lang.foreign.MemorySegment;

/** Stands in for a mover this host lacks; says why, and refuses work. */
final class UnavailableMover implements DataMover {
  private final MoverKind kind;
  private final String reason;

  UnavailableMover(MoverKind kind, String reason) {
    this.kind = kind;
    this.reason = reason;
  }

  @Override
  public MoverKind kind() { return kind; }

  @Override
  public String description() { return "unavailable: " + reason; }

  @Override
  public boolean isAvailable() { return false; }

  @Override
  public String unavailableReason() { return reason; }

  @Override
  public Calibration calibration() { return Calibration.UNCALIBRATED; }

  @Override
  public long maxTransferSize() { return 0; }

  @Override
  public int maxBatchSize() { return 0; }

  @Override
  public int maxInFlight() { return 0; }

  private IllegalStateException refuse() {
    return new IllegalStateException(kind + " mover is unavailable: " + reason);
  }

  @Override
  public Completion submit(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset,
      long length, boolean cacheInjection) {
    throw refuse();
  }

  @Override
  public Completion trySubmit(CopyRequest r) { throw refuse(); }

  @Override
  public Completion submit(Batch batch) { throw refuse(); }

  @Override
  public void close() {}

  @Override
  public String toString() { return kind + ": unavailable: " + reason; }
}
