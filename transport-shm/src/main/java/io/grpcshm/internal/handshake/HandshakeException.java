package io.grpcshm.internal.handshake;

import java.io.IOException;

/** The peer broke the handshake or control protocol (never a local bug). */
public final class HandshakeException extends IOException {
  private static final long serialVersionUID = 1L;

  public HandshakeException(String message) {
    super(message);
  }
}
