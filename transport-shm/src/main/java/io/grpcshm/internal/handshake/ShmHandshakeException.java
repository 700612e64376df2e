package io.grpcshm.internal.handshake;

import io.grpc.Status;
import java.io.IOException;

/** A shared-memory connection could not be established; {@link #status()} says why. */
public final class ShmHandshakeException extends IOException {
  private static final long serialVersionUID = 1L;
  private final transient Status status;

  public ShmHandshakeException(Status status) {
    super(status.toString(), status.getCause());
    this.status = status;
  }

  public Status status() {
    return status;
  }
}
