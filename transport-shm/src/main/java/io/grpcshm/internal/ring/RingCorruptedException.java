package io.grpcshm.internal.ring;

/** The peer wrote something into a ring that cannot be true; the connection must be closed. */
public final class RingCorruptedException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RingCorruptedException(String message) {
    super(message);
  }
}
