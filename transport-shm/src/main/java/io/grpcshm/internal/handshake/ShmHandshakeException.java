package io.grpcshm.internal.handshake;

import io.grpc.Status;
import java.io.IOException;

/** A shared-memory connection could not be established; {@link #status()} says why. */
public final class ShmHandshakeException extends IOException {
  private static final long serialVersionUID = 1L;
  private final transient Status status;
  private final boolean noServer;
  private final boolean serverRefused;

  public ShmHandshakeException(Status status) {
    this(status, false);
  }

  public ShmHandshakeException(Status status, boolean noServer) {
    this(status, noServer, false);
  }

  private ShmHandshakeException(Status status, boolean noServer, boolean serverRefused) {
    super(status.toString(), status.getCause());
    this.status = status;
    this.noServer = noServer;
    this.serverRefused = serverRefused;
  }

  /** This client's own policy refused the server's peer credentials (nothing was sent). */
  public static ShmHandshakeException serverRefused(Status status) {
    return new ShmHandshakeException(status, false, true);
  }

  /** True when this client's policy refused the server (not the server refusing us). */
  public boolean serverRefused() {
    return serverRefused;
  }

  /** Whether {@code status} (as a transport reports it) is this client refusing the server. */
  public static boolean isServerRefused(Status status) {
    return status.getCause() instanceof ShmHandshakeException e && e.serverRefused;
  }

  /** True when nothing listens on the rendezvous name (connect refused): try another name. */
  public boolean noServer() {
    return noServer;
  }

  public Status status() {
    return status;
  }
}
