package io.grpcshm.dsa;

/** A copy that an engine reported as failed; carries the DSA-style status code. */
public final class CopyFailedException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int status;
  private final long bytesCompleted;

  CopyFailedException(MoverKind kind, int status, long bytesCompleted, long length) {
    super(kind + " copy failed with status " + Completion.statusName(status) + " (0x"
        + Integer.toHexString(status) + ") after " + bytesCompleted + " of " + length + " bytes");
    this.status = status;
    this.bytesCompleted = bytesCompleted;
  }

  /**
   * DSA completion status code ({@code enum dsa_completion_status}), or
   * {@link Completion#STATUS_NO_COMPLETION}.
   */
  public int status() { return status; }

  public long bytesCompleted() { return bytesCompleted; }
}
