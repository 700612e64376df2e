package io.grpcshm.internal.handshake;

import io.grpc.Status;
import io.grpcshm.PeerAuthorizationPolicy;
import io.grpcshm.internal.nativeio.Futex;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.NativeException;
import io.grpcshm.internal.nativeio.SharedMapping;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket.PeerCredentials;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The rendezvous handshake, both sides (docs/PROTOCOL.md, "Handshake"):
 *
 * <ol>
 *   <li>client connects to the server's SOCK_SEQPACKET rendezvous socket and sends CLIENT_HELLO
 *       (ring capacity, pool size, stream window it would like);
 *   <li>server, as soon as it accepts the socket and before it reads anything, reads the client's
 *       SO_PEERCRED and asks its policy ({@link #admit}); a refusal is a SERVER_REJECT sent at
 *       once, and nothing is created or mapped;
 *   <li>server reads the hello, creates a memfd, sizes and seals it (no shrink, no grow), maps
 *       it, and answers SERVER_WELCOME with the final sizes and the memfd;
 *   <li>client checks the server's SO_PEERCRED against its own policy, checks the memfd's seals
 *       and size against the sizes, maps it and sends CLIENT_READY.
 * </ol>
 */
public final class Handshakes {
  private Handshakes() {}

  private static final AtomicLong CONNECTION_IDS = new AtomicLong(
      System.nanoTime() ^ ProcessHandle.current().pid() << 32);
  private static final int REQUIRED_SEALS = Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW;

  /** The optional features this side offers (server) or accepts (client). */
  private static int ourFeatures(ShmTransportConfig config) {
    return config.replyMailbox() && Futex.isAvailable() ? HandshakeMessage.FEATURE_REPLY_MAILBOX
        : 0;
  }

  /**
   * A connection that passed the handshake: socket, mapped region, agreed sizes, and the
   * optional features both ends use on it ({@code HandshakeMessage.FEATURE_} bits).
   */
  public record Established(
      UnixSeqpacketSocket socket,
      SharedMapping mapping,
      RegionLayout layout,
      int peerStreamWindow,
      PeerCredentials peer,
      long connectionId,
      int features) {
    /** Whether blocking unary calls may name a reply mailbox (PROTOCOL.md §7.5). */
    public boolean replyMailbox() {
      return (features & HandshakeMessage.FEATURE_REPLY_MAILBOX) != 0;
    }

    /** The mapped region. */
    public MemorySegment region() {
      return mapping.memory();
    }
  }

  /** Client side. Throws with UNAVAILABLE (no server, broken peer) or the server's refusal. */
  public static Established client(String rendezvous, ShmTransportConfig config)
      throws ShmHandshakeException {
    return client(rendezvous, config, null);
  }

  /**
   * Client side, telling the server which TCP address it aimed at ({@code target}, null: none,
   * the socket was named explicitly); the server refuses a target it does not serve. A
   * connection refused because no socket has this name throws with
   * {@link ShmHandshakeException#noServer()} set.
   */
  public static Established client(String rendezvous, ShmTransportConfig config,
      InetSocketAddress target) throws ShmHandshakeException {
    Established established = clientIfListening(rendezvous, config, target);
    if (established == null) {
      throw new ShmHandshakeException(Status.UNAVAILABLE
          .withDescription("no shared-memory server at " + rendezvous), true);
    }
    return established;
  }

  /**
   * As {@link #client(String, ShmTransportConfig, InetSocketAddress)}, but returns null when no
   * socket has this name (nothing to refuse us: the caller tries its next name, or reports them
   * all). Any other failure throws as there.
   */
  public static Established clientIfListening(String rendezvous, ShmTransportConfig config,
      InetSocketAddress target) throws ShmHandshakeException {
    if (!SharedMapping.hasRoom(1, 1.0)) {
      // The region would be one more mapping: with the budget spent, fail this connection
      // (the channel may fall back to TCP) rather than bring the JVM near the kernel's limit.
      throw new ShmHandshakeException(Status.RESOURCE_EXHAUSTED.withDescription(
          "this process holds " + SharedMapping.liveMappings() + " shared mappings (limit "
              + SharedMapping.mappingLimit() + ", -Dio.grpcshm.maxMappings)"));
    }
    UnixSeqpacketSocket socket;
    try {
      socket = UnixSeqpacketSocket.connectIfListening(rendezvous);
    } catch (NativeException e) {
      // A listener is there but cannot take us (e.g. EAGAIN: its backlog is full).
      throw new ShmHandshakeException(Status.UNAVAILABLE
          .withDescription("shared-memory server at " + rendezvous + " unreachable: "
              + e.getMessage()));
    }
    if (socket == null) {
      return null;
    }
    SharedMapping mapping = null;
    int fd = -1;
    try {
      PeerCredentials server = socket.peerCredentials();
      Status allowed = config.peerPolicy().check(server.pid(), server.uid(), server.gid());
      if (!allowed.isOk()) {
        throw ShmHandshakeException.serverRefused(allowed);
      }
      byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
      int len = HandshakeMessage.encode(new HandshakeMessage.ClientHello(
          config.ringCapacity(), config.poolSize(), config.streamWindow(),
          target == null ? null : target.getAddress(), target == null ? 0 : target.getPort()),
          buf);
      IOException helloFailed = null;
      try {
        socket.send(buf, len, -1);
      } catch (IOException e) {
        // The server refuses at accept, before reading the hello, and may have closed already
        // (EPIPE): its SERVER_REJECT is still queued for us (PROTOCOL.md 3.3).
        helloFailed = e;
      }
      int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
      int n = socket.receive(buf, fds, (int) config.handshakeTimeoutMillis());
      if (n < 0) {
        // A server that closed with our hello unread makes the first read report ECONNRESET
        // even though a SERVER_REJECT sent before the close is queued behind it: read again.
        closeExtra(fds, 0);
        n = socket.tryReceive(buf, fds);
      }
      fd = fds[0];
      closeExtra(fds, 1);
      if (n < 0) {
        throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(
            "shared-memory server closed during handshake"
                + (helloFailed == null ? "" : " (" + helloFailed.getMessage() + ")")));
      }
      HandshakeMessage reply = HandshakeMessage.decode(buf, n);
      if (reply instanceof HandshakeMessage.ServerReject reject) {
        Status status = Status.fromCodeValue(reject.statusCode());
        throw new ShmHandshakeException(
            (status.isOk() ? Status.UNAVAILABLE : status).withDescription(
                "shared-memory server refused us: " + reject.reason()));
      }
      if (!(reply instanceof HandshakeMessage.ServerWelcome welcome)) {
        throw new HandshakeException("expected SERVER_WELCOME, got " + reply);
      }
      if (fd < 0) {
        throw new HandshakeException("SERVER_WELCOME without a memory file");
      }
      RegionLayout layout;
      try {
        layout = new RegionLayout(welcome.ringCapacity(), welcome.poolSize());
      } catch (IllegalArgumentException e) {
        throw new HandshakeException("server proposed an invalid layout: " + e.getMessage());
      }
      if (welcome.ringCapacity() > config.ringCapacity() || welcome.poolSize() > config.poolSize()) {
        throw new HandshakeException("server granted more than we asked for (ring "
            + welcome.ringCapacity() + ", pool " + welcome.poolSize() + ")");
      }
      if (layout.totalSize() != welcome.regionSize() || welcome.streamWindow() <= 0) {
        throw new HandshakeException("server's region size " + welcome.regionSize()
            + " does not match its layout (" + layout.totalSize() + ")");
      }
      int seals = Linux.getSeals(fd);
      if ((seals & REQUIRED_SEALS) != REQUIRED_SEALS) {
        throw new HandshakeException("server's memory file is not sealed against resizing");
      }
      long size = Linux.fileSize(fd);
      if (size != layout.totalSize()) {
        throw new HandshakeException(
            "server's memory file has " + size + " bytes, expected " + layout.totalSize());
      }
      mapping = SharedMapping.map(fd, size);
      MemorySegment region = mapping.memory();
      if (region.get(ValueLayout.JAVA_LONG, RegionLayout.HEADER_MAGIC_OFFSET) != RegionLayout.MAGIC) {
        throw new HandshakeException("server's region has a bad magic number");
      }
      Linux.close(fd);
      fd = -1;
      len = HandshakeMessage.encode(new HandshakeMessage.ClientReady(), buf);
      socket.send(buf, len, -1);
      // Only the features this version knows and this client wants.
      int features = welcome.features() & ourFeatures(config);
      return new Established(socket, mapping, layout, welcome.streamWindow(), server,
          welcome.connectionId(), features);
    } catch (ShmHandshakeException e) {
      cleanup(socket, mapping, fd);
      throw e;
    } catch (SocketTimeoutException e) {
      cleanup(socket, mapping, fd);
      throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(
          "shared-memory handshake with " + rendezvous + " timed out").withCause(e));
    } catch (IOException | RuntimeException e) {
      cleanup(socket, mapping, fd);
      throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(
          "shared-memory handshake with " + rendezvous + " failed: " + e.getMessage())
          .withCause(e));
    }
  }

  /**
   * The server policy's verdict on a freshly accepted socket, taken before anything is read from
   * it or set up for it. Only {@link #admit} makes one, and {@link #server(Admission,
   * ShmTransportConfig, long)} runs only for an admitted peer: the policy is asked exactly once
   * per connection, and no handshake can start without it.
   */
  public static final class Admission {
    private final UnixSeqpacketSocket socket;
    private final PeerCredentials peer;
    private final Status verdict;

    private Admission(UnixSeqpacketSocket socket, PeerCredentials peer, Status verdict) {
      this.socket = socket;
      this.peer = peer;
      this.verdict = verdict;
    }

    public UnixSeqpacketSocket socket() {
      return socket;
    }

    /** The peer's SO_PEERCRED, as the kernel recorded it at connect. */
    public PeerCredentials peer() {
      return peer;
    }

    /** OK, or the status the peer is refused with. */
    public Status verdict() {
      return verdict;
    }

    public boolean admitted() {
      return verdict.isOk();
    }
  }

  /**
   * Reads the peer's SO_PEERCRED and asks the server's policy. Never blocks and reads nothing
   * from the socket. A policy that throws refuses the peer (PERMISSION_DENIED). Throws only if
   * the credentials cannot be read (the socket is then useless).
   */
  public static Admission admit(UnixSeqpacketSocket socket, ShmTransportConfig config)
      throws IOException {
    PeerCredentials peer = socket.peerCredentials();
    Status verdict;
    try {
      verdict = config.peerPolicy().check(peer.pid(), peer.uid(), peer.gid());
      if (verdict == null) {
        verdict = Status.PERMISSION_DENIED.withDescription("peer authorization policy said null");
      }
    } catch (RuntimeException e) {
      // The description goes to the peer; the cause only to our log.
      verdict = Status.PERMISSION_DENIED.withDescription("peer authorization policy failed")
          .withCause(e);
    }
    return new Admission(socket, peer, verdict);
  }

  /**
   * Sends SERVER_REJECT with {@code status} without ever waiting (the socket is fresh, so the
   * message fits; if it does not, the peer is refused anyway). Does not close the socket: see
   * {@link #drain}. False if the message did not go out.
   */
  public static boolean reject(UnixSeqpacketSocket socket, Status status) {
    String reason = status.getDescription() == null
        ? (status.getCode() == Status.Code.PERMISSION_DENIED
            ? "peer not authorized" : status.getCode().toString())
        : status.getDescription();
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int len = HandshakeMessage.encode(
        new HandshakeMessage.ServerReject(status.getCode().value(), reason), buf);
    return socket.trySend(buf, len);
  }

  /**
   * Reads and discards, without waiting, what a refused peer has sent (its hello), closing any
   * descriptors: closing a Unix socket with unread data would make the peer's next read fail
   * with ECONNRESET before it reads our SERVER_REJECT. True if the peer has hung up.
   */
  public static boolean drain(UnixSeqpacketSocket socket) {
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
    for (int i = 0; i < 8; i++) {
      int n;
      try {
        n = socket.tryReceive(buf, fds);
      } catch (IOException e) {
        n = 0; // an oversize message or too many descriptors: consumed (and closed) anyway
      }
      closeExtra(fds, 0);
      if (n == -1) {
        return true;
      }
      if (n == UnixSeqpacketSocket.NOTHING) {
        return false;
      }
    }
    return false;
  }

  /**
   * Server side, on a freshly accepted socket, for callers without an acceptor of their own:
   * {@link #admit}, then {@link #server(Admission, ShmTransportConfig, long)} with the handshake
   * timeout from now. A refused peer gets SERVER_REJECT; on refusal or failure the socket is
   * closed and the exception says why.
   */
  public static Established server(UnixSeqpacketSocket socket, ShmTransportConfig config)
      throws ShmHandshakeException {
    long deadline = System.nanoTime() + config.handshakeTimeoutMillis() * 1_000_000L;
    Admission admission;
    try {
      admission = admit(socket, config);
    } catch (IOException e) {
      socket.close();
      throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(
          "shared-memory handshake failed: " + e.getMessage()).withCause(e));
    }
    if (!admission.admitted()) {
      reject(socket, admission.verdict());
      drain(socket);
      socket.close();
      throw new ShmHandshakeException(admission.verdict());
    }
    return server(admission, config, deadline);
  }

  /**
   * Server side for an admitted peer: reads CLIENT_HELLO, creates and sends the region, reads
   * CLIENT_READY, all before {@code deadlineNanos} ({@link System#nanoTime}; the acceptor sets it
   * to the handshake timeout after accept, so time spent waiting for a handshake slot counts).
   * On failure the socket is closed and the exception says why (for the server's log).
   *
   * @throws IllegalArgumentException if the admission refused the peer
   */
  public static Established server(Admission admission, ShmTransportConfig config,
      long deadlineNanos) throws ShmHandshakeException {
    return server(admission, config, deadlineNanos, null);
  }

  /**
   * As {@link #server(Admission, ShmTransportConfig, long)}, refusing with
   * SERVER_REJECT(UNAVAILABLE) a client whose CLIENT_HELLO names a target that {@code served}
   * does not serve (null: no check). A hello without a target (the client named the socket
   * explicitly) is accepted.
   */
  public static Established server(Admission admission, ShmTransportConfig config,
      long deadlineNanos, ServedAddress served) throws ShmHandshakeException {
    if (!admission.admitted()) {
      throw new IllegalArgumentException("peer was refused: " + admission.verdict());
    }
    UnixSeqpacketSocket socket = admission.socket();
    PeerCredentials client = admission.peer();
    byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    SharedMapping mapping = null;
    int fd = -1;
    try {
      int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
      int n = socket.receive(buf, fds, remainingMillis(deadlineNanos));
      closeExtra(fds, 0);
      if (n < 0) {
        throw new HandshakeException("client closed during handshake");
      }
      HandshakeMessage hello = HandshakeMessage.decode(buf, n);
      if (!(hello instanceof HandshakeMessage.ClientHello clientHello)) {
        throw new HandshakeException("expected CLIENT_HELLO, got " + hello);
      }
      if (clientHello.streamWindow() <= 0) {
        throw new HandshakeException("client stream window " + clientHello.streamWindow());
      }
      if (served != null && clientHello.targetAddress() != null
          && !served.serves(clientHello.targetAddress(), clientHello.targetPort())) {
        String reason = served.refusal(clientHello.targetAddress(), clientHello.targetPort());
        reject(socket, Status.UNAVAILABLE.withDescription(reason));
        throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(reason));
      }
      // The server decides the sizes: the client's wishes, clamped to our configured maximum.
      int ring = clientHello.ringCapacity();
      if (!io.grpcshm.internal.ring.RingDescriptor.isValidCapacity(ring)
          || ring < RegionLayout.MIN_RING_CAPACITY || ring > config.ringCapacity()) {
        ring = config.ringCapacity();
      }
      long pool = clientHello.poolSize();
      if (pool < RegionLayout.PAGE || pool % RegionLayout.PAGE != 0 || pool > config.poolSize()) {
        pool = config.poolSize();
      }
      RegionLayout layout = new RegionLayout(ring, pool);
      fd = Linux.memfdCreate("grpc-shm-connection");
      Linux.ftruncate(fd, layout.totalSize());
      Linux.addSeals(fd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
      mapping = SharedMapping.map(fd, layout.totalSize());
      MemorySegment region = mapping.memory();
      region.set(ValueLayout.JAVA_LONG, RegionLayout.HEADER_MAGIC_OFFSET, RegionLayout.MAGIC);
      region.set(ValueLayout.JAVA_INT, RegionLayout.HEADER_VERSION_OFFSET, HandshakeMessage.VERSION);
      region.set(ValueLayout.JAVA_INT, RegionLayout.HEADER_RING_CAPACITY_OFFSET, ring);
      region.set(ValueLayout.JAVA_LONG, RegionLayout.HEADER_POOL_SIZE_OFFSET, pool);
      region.set(ValueLayout.JAVA_LONG, RegionLayout.HEADER_REGION_SIZE_OFFSET, layout.totalSize());
      long connectionId = CONNECTION_IDS.incrementAndGet();
      int features = ourFeatures(config);
      int len = HandshakeMessage.encode(new HandshakeMessage.ServerWelcome(ring, pool,
          layout.totalSize(), connectionId, config.streamWindow(), features), buf);
      socket.send(buf, len, fd);
      Linux.close(fd);
      fd = -1;
      n = socket.receive(buf, fds, remainingMillis(deadlineNanos));
      closeExtra(fds, 0);
      if (n < 0) {
        throw new HandshakeException("client closed during handshake");
      }
      HandshakeMessage ready = HandshakeMessage.decode(buf, n);
      if (!(ready instanceof HandshakeMessage.ClientReady)) {
        throw new HandshakeException("expected CLIENT_READY, got " + ready);
      }
      return new Established(socket, mapping, layout, clientHello.streamWindow(), client,
          connectionId, features);
    } catch (ShmHandshakeException e) {
      cleanup(socket, mapping, fd);
      throw e;
    } catch (IOException | RuntimeException e) {
      cleanup(socket, mapping, fd);
      throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(
          "shared-memory handshake failed: " + e.getMessage()).withCause(e));
    }
  }

  /** Milliseconds left until {@code deadlineNanos}, rounded up; 0 once it has passed. */
  private static int remainingMillis(long deadlineNanos) {
    long left = deadlineNanos - System.nanoTime();
    return left <= 0 ? 0 : (int) Math.min(Integer.MAX_VALUE, (left + 999_999) / 1_000_000);
  }

  private static void closeExtra(int[] fds, int from) {
    for (int i = from; i < fds.length; i++) {
      if (fds[i] >= 0) {
        Linux.close(fds[i]);
        fds[i] = -1;
      }
    }
  }

  private static void cleanup(UnixSeqpacketSocket socket, SharedMapping mapping, int fd) {
    socket.close();
    if (mapping != null) {
      mapping.close();
    }
    Linux.close(fd);
  }
}
