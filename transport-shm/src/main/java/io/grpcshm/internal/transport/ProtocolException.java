package io.grpcshm.internal.transport;

/** The peer sent a frame that breaks the protocol; its connection is closed with INTERNAL. */
final class ProtocolException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  ProtocolException(String message) {
    super(message);
  }
}
