package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import io.grpc.InternalChannelz;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalInstrumented;
import io.grpc.InternalLogId;
import io.grpc.Status;
import io.grpc.ServerStreamTracer;
import io.grpc.internal.InternalServer;
import io.grpc.internal.ServerListener;
import io.grpc.internal.ServerTransportListener;
import io.grpcshm.ShmAddress;
import io.grpcshm.internal.loop.Workers;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.ShmHandshakeException;
import io.grpcshm.internal.nativeio.SharedMapping;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket.PeerCredentials;
import java.io.IOException;
import java.net.SocketAddress;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Accepts shared-memory connections on the rendezvous socket and hands each one, once its
 * handshake passes, to grpc's server as a {@link ShmServerTransport}.
 *
 * <p>Admission happens on the acceptor thread, which never waits for a peer: right after
 * {@code accept} it reads the peer's SO_PEERCRED and asks the policy ({@link Handshakes#admit}),
 * before anything is read or allocated for the connection. A refused peer gets SERVER_REJECT at
 * once (non-blocking) and its socket is closed after a short linger. An admitted one takes a
 * handshake slot ({@link Slots}: a global cap and a per-uid cap, fair between uids) and its
 * handshake runs on a {@link Workers} thread; if its uid is at its cap it waits in a bounded
 * per-uid queue, and beyond that bound it is refused with RESOURCE_EXHAUSTED. Every admitted
 * connection is established, or dropped, within the handshake timeout of its accept, queueing
 * included. Each kind of refusal is logged at most once a minute per server.
 */
public final class ShmInternalServer implements InternalServer {
  private static final Logger log = Logger.getLogger(ShmInternalServer.class.getName());
  /** Handshakes in progress at once, all peers together. */
  public static final int MAX_CONCURRENT_HANDSHAKES = 32;
  /** Handshakes in progress at once for one uid, so no single user can hold every slot. */
  public static final int MAX_HANDSHAKES_PER_UID = 8;
  /** Admitted connections of one uid waiting for a slot; more are refused at once. */
  public static final int MAX_WAITING_PER_UID = 64;
  /** Admitted connections waiting for a slot, all uids together. */
  public static final int MAX_WAITING = 256;
  /**
   * How long a refused socket stays open after its SERVER_REJECT: a client that sends its hello
   * before it reads (as clients of earlier versions do) must find the socket still open, and
   * its hello is drained before the close (closing with unread data would reset the peer).
   */
  static final long REFUSAL_LINGER_NANOS = TimeUnit.MILLISECONDS.toNanos(500);
  /** Refused sockets lingering at once; beyond, the oldest is closed early. */
  static final int MAX_LINGERING = 64;
  /** While no worker thread is free, the acceptor retries starting waiting handshakes this often. */
  /** Pending connections the kernel queues before accept (listen(2)'s backlog). */
  private static final int LISTEN_BACKLOG = 128;
  private static final long RETRY_DISPATCH_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
  /** Each kind of refusal is logged at most once per interval and server. */
  static final long LOG_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(60);

  private final String rendezvous;
  /** The TCP address this server stands in for; clients aiming elsewhere are refused. */
  private final io.grpcshm.internal.handshake.ServedAddress served;
  private final ShmTransportConfig config;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final long handshakeTimeoutNanos;
  private final Slots slots = new Slots(MAX_CONCURRENT_HANDSHAKES, MAX_HANDSHAKES_PER_UID,
      MAX_WAITING_PER_UID, MAX_WAITING);
  /** Refused sockets waiting to be closed, oldest first; the acceptor's alone. */
  private final ArrayDeque<Lingering> lingering = new ArrayDeque<>();
  /** Set by the acceptor when no worker was free to start a handshake; the acceptor's alone. */
  private boolean retryDispatch;
  private final ServerEventLog refusedLog;
  private final ServerEventLog busyLog;
  private final ServerEventLog failedLog;
  private UnixSeqpacketSocket listenSocket;
  private ServerListener listener;
  /**
   * Set, under {@link #handOver}, before grpc hears serverShutdown: a handshake that finishes
   * later must not create a transport, which grpc would never shut down.
   */
  @GuardedBy("handOver") private boolean stopped;
  /** Established connections per peer uid (maxConnectionsPerUid). */
  private final java.util.concurrent.ConcurrentHashMap<Integer, AtomicInteger> connectionsByUid =
      new java.util.concurrent.ConcurrentHashMap<>();
  private final Object handOver = new Object();
  /** Transports handed to grpc and not yet terminated, plus one until serverShutdown. */
  private final AtomicInteger untilTerminated = new AtomicInteger(1);
  private final Runnable onTerminated;
  private volatile Thread acceptor;
  /** Connections handed to grpc, and refused at accept (policy, limits, timeouts): channelz. */
  private final AtomicLong connectionsEstablished = new AtomicLong();
  private final AtomicLong connectionsRefused = new AtomicLong();
  private final ListenSocket listenSocketStats;

  public ShmInternalServer(String rendezvous, ShmTransportConfig config,
      List<? extends ServerStreamTracer.Factory> tracerFactories) {
    this(rendezvous, null, config, tracerFactories, null);
  }

  /**
   * A server on {@code rendezvous} standing in for the TCP listener bound to {@code served}
   * (null: no target check, every client that passes the policy is served). {@code
   * onTerminated} (may be null) runs once when grpc's server over it terminates: this server
   * has shut down and every transport it created has terminated.
   */
  public ShmInternalServer(String rendezvous, io.grpcshm.internal.handshake.ServedAddress served,
      ShmTransportConfig config, List<? extends ServerStreamTracer.Factory> tracerFactories,
      Runnable onTerminated) {
    this.onTerminated = onTerminated;
    this.rendezvous = rendezvous;
    this.listenSocketStats = new ListenSocket();
    this.served = served;
    this.config = config;
    this.tracerFactories = tracerFactories;
    this.handshakeTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(config.handshakeTimeoutMillis());
    this.refusedLog = new ServerEventLog(log, Level.WARNING, LOG_INTERVAL_NANOS,
        "shared-memory server on " + rendezvous + " refused a peer by policy");
    this.busyLog = new ServerEventLog(log, Level.WARNING, LOG_INTERVAL_NANOS,
        "shared-memory server on " + rendezvous + " refused a peer for lack of handshake slots");
    this.failedLog = new ServerEventLog(log, Level.INFO, LOG_INTERVAL_NANOS,
        "shared-memory handshake failed on " + rendezvous);
  }

  /** Accepted connections whose handshake runs or waits for a slot now (tests). */
  int handshakesAdmitted() {
    return slots.active() + slots.waiting();
  }

  @Override
  public void start(ServerListener listener) throws IOException {
    this.listener = listener;
    this.listenSocket = rendezvous.startsWith("@")
        ? UnixSeqpacketSocket.listen(rendezvous, LISTEN_BACKLOG) : listenOnPath(rendezvous);
    InternalChannelz.instance().addListenSocket(listenSocketStats);
    Thread t = new Thread(this::acceptLoop, "grpc-shm-accept-" + rendezvous);
    t.setDaemon(true);
    acceptor = t;
    t.start();
  }

  /** Identity of the socket file this server bound (null: abstract name), for the unlink. */
  private volatile Object boundFileKey;

  /**
   * Binds a path socket (the node-local rendezvous directory, ARCHITECTURE.md): a file left by a
   * dead server (connect refused) is replaced; a live one is not (another server owns that
   * address). The file gets mode 0660; the directory's mode decides who may create files.
   */
  private UnixSeqpacketSocket listenOnPath(String path) throws IOException {
    java.nio.file.Path file = java.nio.file.Path.of(path);
    UnixSeqpacketSocket socket;
    try {
      socket = UnixSeqpacketSocket.listen(path, LISTEN_BACKLOG);
    } catch (IOException e) {
      if (!java.nio.file.Files.exists(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
        throw e;
      }
      try {
        UnixSeqpacketSocket.connect(path).close();
        throw new IOException("a live shared-memory server already publishes " + path);
      } catch (io.grpcshm.internal.nativeio.NativeException refused) {
        if (refused.errno() != io.grpcshm.internal.nativeio.Linux.ECONNREFUSED) {
          throw new IOException("cannot bind " + path + ": " + e.getMessage()
              + "; connecting to it: " + refused.getMessage(), e);
        }
      }
      // Stale: its listener is gone.
      java.nio.file.Files.deleteIfExists(file);
      socket = UnixSeqpacketSocket.listen(path, LISTEN_BACKLOG);
    }
    try {
      java.nio.file.Files.setPosixFilePermissions(file,
          java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw----"));
      boundFileKey = java.nio.file.Files.readAttributes(file,
          java.nio.file.attribute.BasicFileAttributes.class,
          java.nio.file.LinkOption.NOFOLLOW_LINKS).fileKey();
    } catch (IOException | RuntimeException e) {
      socket.close();
      java.nio.file.Files.deleteIfExists(file);
      throw e;
    }
    return socket;
  }

  /** Removes our socket file, unless another server has replaced it since. */
  private void unlinkOwnFile() {
    Object key = boundFileKey;
    if (key == null) {
      return;
    }
    java.nio.file.Path file = java.nio.file.Path.of(rendezvous);
    try {
      Object now = java.nio.file.Files.readAttributes(file,
          java.nio.file.attribute.BasicFileAttributes.class,
          java.nio.file.LinkOption.NOFOLLOW_LINKS).fileKey();
      if (key.equals(now)) {
        java.nio.file.Files.deleteIfExists(file);
      }
    } catch (IOException | RuntimeException e) {
      // Gone already, or not ours to remove.
    }
  }

  private void acceptLoop() {
    List<Pending> expired = new ArrayList<>();
    try {
      while (true) {
        long now = System.nanoTime();
        closeLingering(now);
        slots.expire(now, expired);
        refuseExpired(expired, now);
        startWaiting(now, expired);
        refuseExpired(expired, now);
        long wake = Math.min(
            lingering.isEmpty() ? Long.MAX_VALUE : lingering.peekFirst().closeAt,
            slots.earliestDeadline());
        if (retryDispatch) {
          wake = Math.min(wake, now + RETRY_DISPATCH_NANOS);
        }
        if (wake != Long.MAX_VALUE) {
          long millis = Math.max(1, (wake - now + 999_999) / 1_000_000);
          if (!listenSocket.awaitAcceptable((int) Math.min(millis, 60_000))) {
            continue;
          }
        }
        UnixSeqpacketSocket socket = listenSocket.accept();
        if (socket == null) {
          break;
        }
        admit(socket);
      }
    } catch (IOException | RuntimeException e) {
      log.log(Level.WARNING, "shared-memory accept loop on " + rendezvous + " failed", e);
    } finally {
      listenSocket.close();
      InternalChannelz.instance().removeListenSocket(listenSocketStats);
      unlinkOwnFile();
      synchronized (handOver) {
        stopped = true;
      }
      Status down = Status.UNAVAILABLE.withDescription("shared-memory server shut down");
      for (Pending p : slots.close()) {
        closeRefused(p.admission.socket(), down);
      }
      while (!lingering.isEmpty()) {
        closeRefused(lingering.poll().socket, null);
      }
      refusedLog.flush();
      busyLog.flush();
      failedLog.flush();
      listener.serverShutdown();
      countDownToTermination();
    }
  }

  /** Admission of a freshly accepted socket: credentials, policy, slot. Never waits. */
  private void admit(UnixSeqpacketSocket socket) {
    long now = System.nanoTime();
    Handshakes.Admission admission;
    try {
      admission = Handshakes.admit(socket, config);
    } catch (IOException e) {
      socket.close();
      failedLog.log(() -> "could not read a peer's credentials: " + e.getMessage());
      return;
    }
    PeerCredentials peer = admission.peer();
    if (!admission.admitted()) {
      refuse(socket, admission.verdict(), now);
      refusedLog.log(() -> "pid " + peer.pid() + " uid " + peer.uid() + " gid "
          + peer.gid() + ": " + describe(admission.verdict()));
      return;
    }
    AtomicInteger held = connectionsByUid.get(peer.uid());
    if (held != null && held.get() >= config.maxConnectionsPerUid()) {
      // Established connections; those in a handshake are bounded by the slots (8 + 64 per uid).
      Status many = Status.RESOURCE_EXHAUSTED.withDescription("uid " + peer.uid() + " holds "
          + config.maxConnectionsPerUid() + " shared-memory connections to this server (limit: "
          + "ShmServerBuilder.maxConnectionsPerUid)");
      refuse(socket, many, now);
      busyLog.log(() -> "pid " + peer.pid() + " uid " + peer.uid() + ": " + describe(many));
      return;
    }
    if (!SharedMapping.hasRoom(1, 1.0)) {
      // A connection maps its region: with the process's mapping budget spent, refuse it here
      // rather than let the JVM run out of mappings (it aborts when one of its own fails).
      Status full = Status.RESOURCE_EXHAUSTED.withDescription("the shared-memory server holds "
          + SharedMapping.liveMappings() + " shared mappings (limit "
          + SharedMapping.mappingLimit() + ", -Dio.grpcshm.maxMappings)");
      refuse(socket, full, now);
      busyLog.log(() -> "pid " + peer.pid() + " uid " + peer.uid() + ": " + describe(full));
      return;
    }
    Pending pending = new Pending(admission, peer.uid(), now + handshakeTimeoutNanos);
    switch (slots.offer(pending)) {
      case START -> dispatch(pending);
      case WAIT -> { }
      case FULL -> {
        Status busy = Status.RESOURCE_EXHAUSTED.withDescription(
            "too many shared-memory connections waiting for a handshake (uid " + peer.uid()
                + ": at most " + MAX_HANDSHAKES_PER_UID + " in handshake and "
                + MAX_WAITING_PER_UID + " waiting; " + MAX_WAITING + " waiting in all)");
        refuse(socket, busy, now);
        busyLog.log(() -> "pid " + peer.pid() + " uid " + peer.uid() + ": "
            + describe(busy));
      }
    }
  }

  /** Starts waiting handshakes for which slots are free (uids in turn). Acceptor only. */
  private void startWaiting(long now, List<Pending> expired) {
    retryDispatch = false;
    Pending next;
    while (!retryDispatch && (next = slots.next(now, expired)) != null) {
      dispatch(next);
    }
  }

  /**
   * Runs {@code pending}'s handshake (it holds a slot) on a worker. If every worker is busy the
   * pool would run it on this thread, the acceptor, which must never wait for a peer: then it
   * goes back to the head of its queue and the acceptor retries shortly.
   */
  private void dispatch(Pending pending) {
    boolean[] ranHere = new boolean[1];
    Workers.get().execute(() -> {
      if (Thread.currentThread() == acceptor) {
        ranHere[0] = true;
        return;
      }
      serve(pending);
    });
    if (ranHere[0]) {
      retryDispatch = true;
      if (!slots.putBack(pending)) {
        closeRefused(pending.admission.socket(),
            Status.UNAVAILABLE.withDescription("shared-memory server shut down"));
      }
    }
  }

  /** On a worker: this handshake, then waiting ones while slots are free for them. */
  private void serve(Pending first) {
    List<Pending> expired = new ArrayList<>(0);
    Pending p = first;
    while (p != null) {
      try {
        establish(p);
      } catch (RuntimeException e) {
        log.log(Level.WARNING, "shared-memory server on " + rendezvous
            + " failed to set up a connection", e);
      }
      p = slots.finish(p, System.nanoTime(), expired);
      for (Pending e : expired) {
        Status late = timedOut(e.uid);
        closeRefused(e.admission.socket(), late);
        busyLog.log(() -> "pid " + e.admission.peer().pid() + " uid " + e.uid + ": "
            + describe(late));
      }
      expired.clear();
    }
  }

  private void establish(Pending pending) {
    Handshakes.Established established;
    try {
      established = Handshakes.server(pending.admission, config, pending.deadline,
          served);
    } catch (ShmHandshakeException e) {
      PeerCredentials peer = pending.admission.peer();
      failedLog.log(() -> "pid " + peer.pid() + " uid " + peer.uid() + ": "
          + describe(e.status()));
      return;
    }
    ShmConnection connection = new ShmConnection("server:" + rendezvous, established.socket(),
        established.mapping(), established.layout(), true, config,
        established.peerStreamWindow(), established.replyMailbox());
    ShmAddress remote = new ShmAddress(rendezvous, established.peer().pid(),
        established.peer().uid());
    ShmServerTransport transport;
    ServerTransportListener transportListener;
    synchronized (handOver) {
      if (stopped) {
        connection.abandon(Status.UNAVAILABLE.withDescription("server shut down"));
        return;
      }
      transport = new ShmServerTransport(connection, ShmAddress.listening(rendezvous), remote,
          tracerFactories, config);
      untilTerminated.incrementAndGet(); // before serverShutdown: stopped is still false
      transportListener = countedPerUid(established.peer().uid(),
          listener.transportCreated(transport));
    }
    connectionsEstablished.incrementAndGet();
    transport.start(transportListener);
  }

  /** grpc's server terminates when the last of these counts has happened. */
  private void countDownToTermination() {
    if (untilTerminated.decrementAndGet() == 0 && onTerminated != null) {
      try {
        onTerminated.run();
      } catch (RuntimeException e) {
        log.log(Level.WARNING, "shared-memory server on " + rendezvous
            + ": releasing its resources failed", e);
      }
    }
  }

  /** Counts the connection against its uid's limit until grpc hears it terminated. */
  private ServerTransportListener countedPerUid(int uid, ServerTransportListener delegate) {
    AtomicInteger held = connectionsByUid.computeIfAbsent(uid, u -> new AtomicInteger());
    held.incrementAndGet();
    return new ServerTransportListener() {
      private final java.util.concurrent.atomic.AtomicBoolean ended =
          new java.util.concurrent.atomic.AtomicBoolean();

      @Override
      public void streamCreated(io.grpc.internal.ServerStream stream, String method,
          io.grpc.Metadata headers) {
        delegate.streamCreated(stream, method, headers);
      }

      @Override
      public io.grpc.Attributes transportReady(io.grpc.Attributes attributes) {
        return delegate.transportReady(attributes);
      }

      @Override
      public void transportTerminated() {
        boolean first = ended.compareAndSet(false, true);
        if (first) {
          held.decrementAndGet(); // the entry stays: one per uid ever seen, a few bytes
        }
        delegate.transportTerminated();
        if (first) {
          countDownToTermination();
        }
      }
    };
  }

  private Status timedOut(int uid) {
    return Status.RESOURCE_EXHAUSTED.withDescription("no shared-memory handshake slot free for "
        + "uid " + uid + " within " + config.handshakeTimeoutMillis() + " ms");
  }

  private void refuseExpired(List<Pending> expired, long now) {
    if (expired.isEmpty()) {
      return;
    }
    for (Pending p : expired) {
      Status late = timedOut(p.uid);
      refuse(p.admission.socket(), late, now);
      busyLog.log(() -> "pid " + p.admission.peer().pid() + " uid " + p.uid + ": "
          + describe(late));
    }
    expired.clear();
  }

  /**
   * Sends SERVER_REJECT without waiting and lets the socket linger (acceptor only): the peer
   * reads the refusal whether or not it sent its hello, and its hello is drained before the
   * close. Nothing else is kept for it; if too many linger, the oldest is closed now.
   */
  private void refuse(UnixSeqpacketSocket socket, Status status, long now) {
    connectionsRefused.incrementAndGet();
    Handshakes.reject(socket, status);
    if (Handshakes.drain(socket)) {
      socket.close(); // the peer is gone already
      return;
    }
    if (lingering.size() >= MAX_LINGERING) {
      closeRefused(lingering.poll().socket, null);
    }
    lingering.add(new Lingering(socket, now + REFUSAL_LINGER_NANOS));
  }

  private void closeLingering(long now) {
    while (!lingering.isEmpty() && now - lingering.peekFirst().closeAt >= 0) {
      closeRefused(lingering.poll().socket, null);
    }
  }

  /** Refuses (if {@code status} is not null) and closes at once, without waiting. */
  private static void closeRefused(UnixSeqpacketSocket socket, Status status) {
    if (status != null) {
      Handshakes.reject(socket, status);
    }
    Handshakes.drain(socket);
    socket.close();
  }

  private static String describe(Status status) {
    return status.getCode() + (status.getDescription() == null ? ""
        : ": " + status.getDescription())
        + (status.getCause() == null ? "" : " (" + status.getCause() + ")");
  }

  @Override
  public void shutdown() {
    if (listenSocket != null) {
      listenSocket.shutdown();
    }
  }

  @Override
  public SocketAddress getListenSocketAddress() {
    return ShmAddress.listening(rendezvous);
  }

  @Override
  public InternalInstrumented<SocketStats> getListenSocketStats() {
    return listenSocketStats;
  }

  @Override
  public List<? extends SocketAddress> getListenSocketAddresses() {
    return List.of(getListenSocketAddress());
  }

  @Override
  public List<InternalInstrumented<SocketStats>> getListenSocketStatsList() {
    return List.of(listenSocketStats);
  }

  /** The rendezvous socket as channelz sees it (a listen socket of this server). */
  private final class ListenSocket implements InternalInstrumented<SocketStats> {
    private final InternalLogId logId = InternalLogId.allocate(getClass(), rendezvous);

    @Override
    public InternalLogId getLogId() {
      return logId;
    }

    @Override
    public ListenableFuture<SocketStats> getStats() {
      return Futures.immediateFuture(ShmSocketStats.listener(getListenSocketAddress(),
          connectionsEstablished.get(), connectionsRefused.get()));
    }

    @Override
    public String toString() {
      return "ShmListenSocket{logId=" + logId.getId() + ", " + getListenSocketAddress() + "}";
    }
  }

  @Override
  public String toString() {
    return "ShmInternalServer{" + getListenSocketAddress() + "}";
  }

  /** A refused socket and when to close it. */
  private record Lingering(UnixSeqpacketSocket socket, long closeAt) {}

  /**
   * An admitted connection, waiting for a handshake slot or holding one. {@code deadline}
   * ({@link System#nanoTime}) is its accept time plus the handshake timeout.
   */
  static final class Pending {
    final Handshakes.Admission admission;
    final int uid;
    final long deadline;

    Pending(Handshakes.Admission admission, int uid, long deadline) {
      this.admission = admission;
      this.uid = uid;
      this.deadline = deadline;
    }
  }

  /**
   * Handshake slots, fair per uid. At most {@code maxActive} handshakes run at once, and at most
   * {@code maxActivePerUid} of one uid. An admitted connection that finds its uid (or the server)
   * at the cap waits in its uid's FIFO queue, which holds at most {@code maxWaitingPerUid}
   * (and all queues together {@code maxWaiting}); beyond that it is refused. A freed slot goes to
   * the waiting uid with the fewest running handshakes (in turn among equals), so a uid that
   * keeps many connections queued delays only itself. Nothing here waits; callers close what it
   * hands back.
   */
  static final class Slots {
    enum Offer {
      /** The connection holds a slot: start its handshake. */
      START,
      /** The connection is queued; {@link #next} or {@link #finish} will hand it out. */
      WAIT,
      /** Its uid's queue (or all queues) is full, or the server stopped: refuse it. */
      FULL
    }

    private static final class Uid {
      int active;
      final ArrayDeque<Pending> waiting = new ArrayDeque<>();
    }

    private final int maxActive;
    private final int maxActivePerUid;
    private final int maxWaitingPerUid;
    private final int maxWaiting;
    /** Uids with running or waiting handshakes; the order is the turn for freed slots. */
    private final LinkedHashMap<Integer, Uid> uids = new LinkedHashMap<>();
    private int active;
    private int waiting;
    private boolean closed;

    Slots(int maxActive, int maxActivePerUid, int maxWaitingPerUid, int maxWaiting) {
      this.maxActive = maxActive;
      this.maxActivePerUid = maxActivePerUid;
      this.maxWaitingPerUid = maxWaitingPerUid;
      this.maxWaiting = maxWaiting;
    }

    synchronized Offer offer(Pending p) {
      if (closed) {
        return Offer.FULL;
      }
      Uid u = uids.computeIfAbsent(p.uid, k -> new Uid());
      if (u.waiting.isEmpty() && u.active < maxActivePerUid && active < maxActive) {
        u.active++;
        active++;
        return Offer.START;
      }
      if (u.waiting.size() >= maxWaitingPerUid || waiting >= maxWaiting) {
        forgetIfIdle(p.uid, u);
        return Offer.FULL;
      }
      u.waiting.add(p);
      waiting++;
      return Offer.WAIT;
    }

    /**
     * Frees {@code p}'s slot and returns the next connection to start (its slot taken), or null.
     * Waiting connections found past their deadline are moved to {@code expired}.
     */
    synchronized Pending finish(Pending p, long now, List<Pending> expired) {
      Uid u = uids.get(p.uid);
      u.active--;
      active--;
      forgetIfIdle(p.uid, u);
      return next(now, expired);
    }

    /**
     * The waiting connection to start next, its slot taken, or null if no slot is free for any
     * waiting connection. The slot goes to the uid with the fewest running handshakes, ties to
     * the uid served longest ago; within a uid, first come first served. Waiting connections
     * found past their deadline are moved to {@code expired}.
     */
    synchronized Pending next(long now, List<Pending> expired) {
      while (!closed && active < maxActive && waiting > 0) {
        Integer turn = null;
        int fewest = maxActivePerUid;
        for (Map.Entry<Integer, Uid> e : uids.entrySet()) {
          Uid candidate = e.getValue();
          if (!candidate.waiting.isEmpty() && candidate.active < fewest) {
            turn = e.getKey();
            fewest = candidate.active;
          }
        }
        if (turn == null) {
          return null;
        }
        Uid u = uids.remove(turn);
        uids.put(turn, u); // served: to the back of the turn
        Pending p = u.waiting.poll();
        waiting--;
        if (now - p.deadline >= 0) {
          expired.add(p);
          forgetIfIdle(turn, u);
          continue;
        }
        u.active++;
        active++;
        return p;
      }
      return null;
    }

    /**
     * Gives a started connection's slot back and puts it at the head of its queue (no thread was
     * free to run it). False if the server stopped: the caller closes it.
     */
    synchronized boolean putBack(Pending p) {
      Uid u = uids.get(p.uid);
      u.active--;
      active--;
      if (closed) {
        forgetIfIdle(p.uid, u);
        return false;
      }
      u.waiting.addFirst(p);
      waiting++;
      return true;
    }

    /** Moves waiting connections past their deadline to {@code expired}. */
    synchronized void expire(long now, List<Pending> expired) {
      Iterator<Map.Entry<Integer, Uid>> it = uids.entrySet().iterator();
      while (it.hasNext()) {
        Uid u = it.next().getValue();
        // Deadlines grow along a queue (accept order; put-back ones are older still).
        while (!u.waiting.isEmpty() && now - u.waiting.peekFirst().deadline >= 0) {
          expired.add(u.waiting.poll());
          waiting--;
        }
        if (u.active == 0 && u.waiting.isEmpty()) {
          it.remove();
        }
      }
    }

    /** The earliest deadline of a waiting connection, or {@link Long#MAX_VALUE} if none waits. */
    synchronized long earliestDeadline() {
      long earliest = Long.MAX_VALUE;
      for (Uid u : uids.values()) {
        Pending first = u.waiting.peekFirst();
        if (first != null && (earliest == Long.MAX_VALUE || first.deadline - earliest < 0)) {
          earliest = first.deadline;
        }
      }
      return earliest;
    }

    /** Admits nothing more; returns the waiting connections, for the caller to close. */
    synchronized List<Pending> close() {
      closed = true;
      List<Pending> all = new ArrayList<>(waiting);
      Iterator<Map.Entry<Integer, Uid>> it = uids.entrySet().iterator();
      while (it.hasNext()) {
        Uid u = it.next().getValue();
        all.addAll(u.waiting);
        u.waiting.clear();
        if (u.active == 0) {
          it.remove();
        }
      }
      waiting = 0;
      return all;
    }

    synchronized int active() {
      return active;
    }

    synchronized int active(int uid) {
      Uid u = uids.get(uid);
      return u == null ? 0 : u.active;
    }

    synchronized int waiting() {
      return waiting;
    }

    /** Uids the slots keep state for (only those with running or waiting handshakes). */
    synchronized int trackedUids() {
      return uids.size();
    }

    private void forgetIfIdle(int uid, Uid u) {
      if (u.active == 0 && u.waiting.isEmpty()) {
        uids.remove(uid);
      }
    }
  }

  /**
   * One kind of server event on the shared {@link RateLimitedLog} (one line per interval, the
   * next saying how many were left out), plus a last count when the server stops.
   */
  static final class ServerEventLog {
    private final RateLimitedLog log;
    private final Level level;
    private final String kind;

    ServerEventLog(Logger logger, Level level, long intervalNanos, String kind) {
      this.log = new RateLimitedLog(logger, intervalNanos);
      this.level = level;
      this.kind = kind;
    }

    /** Logs {@code event} unless a line of this kind went out less than an interval ago. */
    void log(Supplier<String> event) {
      log.log(level, kind, () -> kind + ": " + event.get());
    }

    /** Reports events left out since the last line, if any. */
    void flush() {
      log.flush(level, kind, kind);
    }
  }
}
