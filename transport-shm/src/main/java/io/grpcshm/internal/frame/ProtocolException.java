package io.grpcshm.internal.frame;

/** The peer sent a frame that breaks the protocol; its connection is closed with INTERNAL. */
public final class ProtocolException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public ProtocolException(String message) {
    super(message);
  }
}
