package io.grpcshm.internal.handshake;

import io.grpc.Status;
import java.io.IOException;

/** A shared-memory connection could not be established; {@link #status()} says why. */
public final class ShmHandshakeException extends IOException {
  private static final long serialVersionUID = 1L;
  private final transient Status status;
  private final boolean noServer;

  public ShmHandshakeException(Status status) {
    this(status, false);
  }

  public ShmHandshakeException(Status status, boolean noServer) {
    super(status.toString(), status.getCause());
    this.status = status;
    this.noServer = noServer;
  }

  /** True when nothing listens on the rendezvous name (connect refused): try another name. */
  public boolean noServer() {
    return noServer;
  }

  public Status status() {
    return status;
  }
}
