package io.grpcshm;

import io.grpc.Attributes;
import io.grpc.Grpc;
import java.net.InetSocketAddress;

/** Which path a call took; read it from {@code ClientCall/ServerCall.getAttributes()}. */
public enum TransportPath {
  /** Shared-memory queue pairs (this library). */
  SHARED_MEMORY,
  /** Stock Netty HTTP/2 over TCP (remote peers, non-shm servers, refused handshakes). */
  TCP,
  /** Anything else (in-process, Unix sockets, ...). */
  OTHER;

  /** Set on every shared-memory transport and stream. */
  public static final Attributes.Key<TransportPath> KEY =
      Attributes.Key.create("io.grpcshm.TransportPath");

  /** The path of a call, from its attributes. */
  public static TransportPath of(Attributes attributes) {
    TransportPath explicit = attributes.get(KEY);
    if (explicit != null) {
      return explicit;
    }
    return attributes.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR) instanceof InetSocketAddress
        ? TCP
        : OTHER;
  }
}
