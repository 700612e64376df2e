package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.frame.FrameCodec;
import io.grpcshm.internal.frame.MetadataArrays;
import com.google.common.base.Stopwatch;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.ClientStreamTracer;
import io.grpc.Grpc;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalLogId;
import io.grpc.InternalStatus;
import io.grpc.InternalMetadata;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import io.grpc.internal.ClientStream;
import io.grpc.internal.ClientStreamListener.RpcProgress;
import io.grpc.internal.ConnectionClientTransport;
import io.grpc.internal.DisconnectError;
import io.grpc.internal.FailingClientStream;
import io.grpc.internal.GoAwayDisconnectError;
import io.grpc.internal.GrpcAttributes;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.Http2Ping;
import io.grpc.internal.KeepAliveManager;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.SimpleDisconnectError;
import io.grpc.internal.StatsTraceContext;
import io.grpcshm.ShmAddress;
import io.grpcshm.TransportPath;
import io.grpcshm.internal.loop.Workers;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.ShmHandshakeException;
import io.grpcshm.internal.movement.ActiveStreams;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket.PeerCredentials;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.loop.HoldingExecutor;
import io.netty.util.collection.IntObjectHashMap;
import io.netty.util.collection.IntObjectMap;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Client side of one shared-memory connection, a grpc {@link ConnectionClientTransport}.
 *
 * <p>Each stream's transport state is driven by its own {@link StreamSerializer}, which never
 * waits; stream listeners (and, with {@code directExecutor()}, the application) are called only
 * from there, never while {@link #lock} is held. {@link #lock} guards the stream table, stream ids
 * and the transport's own state. Lock order: a stream's serializer (held, never waited for), then
 * {@link #lock}, then the connection's sender lock. Transport-listener calls (grpc's subchannel,
 * not the application) are made under {@link #lock}: {@code transportShutdown} is reported in
 * the same critical section that sets {@link #shutdownStatus}, because a stream that ends right
 * after may close the connection and report {@code transportTerminated}, which grpc refuses
 * (IllegalStateException) unless shutdown came first.
 */
public final class ShmClientTransport
    implements ConnectionClientTransport, KeepAliveManager.ClientKeepAlivePinger.TransportWithDisconnectReason,
        StreamSerializer.FailureHandler {
  private static final Logger log = Logger.getLogger(ShmClientTransport.class.getName());

  /** Lifecycle with checked transitions. */
  enum State {
    NEW,
    HANDSHAKING,
    READY,
    SHUTDOWN,
    TERMINATED;

    State to(State next) {
      boolean ok = switch (this) {
        case NEW -> next == HANDSHAKING || next == SHUTDOWN;
        case HANDSHAKING -> next == READY || next == SHUTDOWN;
        case READY -> next == SHUTDOWN;
        case SHUTDOWN -> next == TERMINATED;
        case TERMINATED -> false;
      };
      if (!ok) {
        throw new IllegalStateException("transport state " + this + " -> " + next);
      }
      return next;
    }
  }

  /** Largest client stream id (odd ids, increasing); beyond it the transport retires. */
  static final int MAX_STREAM_ID = Integer.MAX_VALUE - 2;

  final Object lock = new Object();
  /**
   * A refusing call executor fails every call it refuses: one line a minute per transport says
   * so (per transport, so that one channel's refusals never hide another's first).
   */
  private final RateLimitedLog executorRefusals =
      new RateLimitedLog(log, TimeUnit.MINUTES.toNanos(1));
  private final InternalLogId logId;
  private final Status preFailure;
  /** The names to try, in order (the next one only when nothing listens on the previous). */
  private final List<String> candidates;
  /** The connected name, or all the candidates until connected (for logs). */
  private volatile String rendezvous;
  /** The TCP address the channel aimed at, sent in CLIENT_HELLO; null: none. */
  private final InetSocketAddress target;
  private final SocketAddress remoteAddress;
  private final String defaultAuthority;
  private final byte[] defaultAuthorityBytes;
  private static final int MAX_CACHED_PATHS = 1024;
  private final Map<String, byte[]> encodedPaths = new ConcurrentHashMap<>();
  /** Our user-agent as grpc would encode it, encoded once rather than for every call. */
  /** grpc's user-agent key, for a value already encoded (the marshaller hands it through). */
  private static final Metadata.Key<byte[]> USER_AGENT_BYTES = InternalMetadata.keyOf(
      GrpcUtil.USER_AGENT_KEY.name(), new InternalMetadata.TrustedAsciiMarshaller<byte[]>() {
        @Override
        public byte[] toAsciiString(byte[] value) {
          return value;
        }

        @Override
        public byte[] parseAsciiString(byte[] serialized) {
          return serialized;
        }
      });
  private final byte[] userAgentBytes;
  private final ShmTransportConfig config;
  private final ScheduledExecutorService scheduler;
  private final StreamTracers streamTracers = new StreamTracers();
  private final long keepAliveTimeNanos;
  private final long keepAliveTimeoutNanos;
  private final boolean keepAliveWithoutCalls;
  private final Attributes eagAttributes;

  /** Written under {@link #lock}; volatile so that {@link #newStream} can check it without it. */
  @GuardedBy("lock") private volatile State state = State.NEW;
  @GuardedBy("lock") private final IntObjectMap<ShmClientStream.TransportState> streams =
      new IntObjectHashMap<>();
  @GuardedBy("lock") private int nextStreamId = 1;
  @GuardedBy("lock") private int inUseStreams;
  /** Written under {@link #lock}; volatile like {@link #state}. */
  @GuardedBy("lock") private volatile Status shutdownStatus;
  @GuardedBy("lock") private Http2Ping outstandingPing;
  @GuardedBy("lock") private boolean goAwayReceived;
  /** grpc requires transportShutdown before transportTerminated; see {@link #reportShutdown}. */
  @GuardedBy("lock") private boolean shutdownReported;
  @GuardedBy("lock") private boolean terminatedNotified;
  /** Message bytes (grpc frames) handed to the connection and received from it, for channelz. */
  final LongAdder dataBytesSent = new LongAdder();
  private final LongAdder dataBytesReceived = new LongAdder();
  /** The server process, as the kernel reported it at connect; null before. */
  private volatile PeerCredentials peer;
  private volatile ShmConnection connection;
  private volatile Attributes attributes = Attributes.EMPTY;
  private Listener listener;
  private KeepAliveManager keepAliveManager;

  /**
   * A transport that fails its start with {@code preFailure} (for addresses shared memory can
   * never reach, so the caller gets a clear status instead of a wrong peer).
   */
  public static ShmClientTransport failing(SocketAddress remoteAddress, Status preFailure,
      ScheduledExecutorService scheduler) {
    return new ShmClientTransport(List.of("(none)"), null, remoteAddress, "unused", null,
        Attributes.EMPTY,
        ShmTransportConfig.defaults(), scheduler, GrpcUtil.KEEPALIVE_TIME_NANOS_DISABLED,
        GrpcUtil.DEFAULT_KEEPALIVE_TIMEOUT_NANOS, false, preFailure);
  }

  /**
   * A transport that tries {@code candidates} in order (the next only when no socket has the
   * previous name) and tells the server it aimed at {@code target} (null: no target), which a
   * server that does not serve that address refuses. {@code preFailure}, if not null, fails its
   * start instead (see {@link #failing}).
   */
  public ShmClientTransport(
      List<String> candidates,
      InetSocketAddress target,
      SocketAddress remoteAddress,
      String authority,
      String userAgent,
      Attributes eagAttributes,
      ShmTransportConfig config,
      ScheduledExecutorService scheduler,
      long keepAliveTimeNanos,
      long keepAliveTimeoutNanos,
      boolean keepAliveWithoutCalls,
      Status preFailure) {
    this.preFailure = preFailure;
    if (candidates.isEmpty()) {
      throw new IllegalArgumentException("no rendezvous name");
    }
    this.candidates = List.copyOf(candidates);
    this.rendezvous = String.join(" or ", candidates);
    this.target = target;
    this.remoteAddress = remoteAddress;
    this.defaultAuthority = authority;
    this.defaultAuthorityBytes =
        authority == null ? new byte[0] : authority.getBytes(StandardCharsets.UTF_8);
    this.userAgentBytes =
        GrpcUtil.getGrpcUserAgent("shm", userAgent).getBytes(StandardCharsets.US_ASCII);
    this.eagAttributes = eagAttributes;
    this.config = config;
    this.scheduler = scheduler;
    this.keepAliveTimeNanos = keepAliveTimeNanos;
    this.keepAliveTimeoutNanos = keepAliveTimeoutNanos;
    this.keepAliveWithoutCalls = keepAliveWithoutCalls;
    this.logId = InternalLogId.allocate(getClass(), remoteAddress.toString());
  }

  ShmConnection connection() {
    return connection;
  }

  int inboundStreamWindow() {
    return config.streamWindow();
  }

  @Override
  public Runnable start(Listener listener) {
    this.listener = listener;
    synchronized (lock) {
      state = state.to(State.HANDSHAKING);
    }
    Workers.get().execute(this::handshake);
    return null;
  }

  /** Tries the candidate names in order; a name nobody listens on moves on to the next one. */
  private Handshakes.Established connect() throws ShmHandshakeException {
    List<String> missing = new ArrayList<>();
    for (String name : candidates) {
      Handshakes.Established e = Handshakes.clientIfListening(name, config, target);
      if (e != null) {
        rendezvous = name;
        return e;
      }
      missing.add(name);
    }
    throw new ShmHandshakeException(Status.UNAVAILABLE.withDescription(
        "no shared-memory server for " + (target != null ? target : remoteAddress)
            + " on this host (nothing listens on " + String.join(" or ", missing) + ")"), true);
  }

  private void handshake() {
    if (preFailure != null) {
      failBeforeReady(preFailure);
      return;
    }
    Handshakes.Established established;
    try {
      established = connect();
    } catch (ShmHandshakeException e) {
      log.log(Level.FINE, "shared-memory handshake with {0} failed: {1}",
          new Object[] {rendezvous, e.status()});
      failBeforeReady(e.status().withCause(e));
      return;
    }
    ShmConnection conn = new ShmConnection("client:" + rendezvous, established.socket(),
        established.mapping(), established.layout(), false, config,
        established.peerStreamWindow(), established.replyMailbox());
    ShmAddress local = new ShmAddress(rendezvous, (int) ProcessHandle.current().pid(),
        Linux.getuid());
    Attributes attrs = Attributes.newBuilder()
        .set(Grpc.TRANSPORT_ATTR_REMOTE_ADDR, remoteAddress)
        .set(Grpc.TRANSPORT_ATTR_LOCAL_ADDR, local)
        .set(TransportPath.KEY, TransportPath.SHARED_MEMORY)
        .set(GrpcAttributes.ATTR_SECURITY_LEVEL, SecurityLevel.PRIVACY_AND_INTEGRITY)
        .set(GrpcAttributes.ATTR_CLIENT_EAG_ATTRS, eagAttributes)
        .build();
    synchronized (lock) {
      if (state != State.HANDSHAKING) {
        // Shut down while we were handshaking: already reported, just release the connection.
        conn.abandon(Status.UNAVAILABLE.withDescription("transport shut down during handshake"));
        return;
      }
      connection = conn;
      peer = established.peer();
      attributes = listener.filterTransport(attrs);
      state = state.to(State.READY);
      if (keepAliveTimeNanos != GrpcUtil.KEEPALIVE_TIME_NANOS_DISABLED) {
        keepAliveManager = new KeepAliveManager(new KeepAliveManager.ClientKeepAlivePinger(this),
            scheduler, keepAliveTimeNanos, keepAliveTimeoutNanos, keepAliveWithoutCalls);
        keepAliveManager.onTransportStarted();
      }
      // Started and reported under the lock, so a concurrent shutdown sees a running connection
      // (its close reaches our handler) and is reported after transportReady.
      conn.start(new Handler());
      listener.transportReady();
    }
  }

  private void failBeforeReady(Status status) {
    synchronized (lock) {
      if (state == State.HANDSHAKING) {
        state = state.to(State.SHUTDOWN);
        shutdownStatus = status;
        reportShutdown(status, SimpleDisconnectError.UNKNOWN);
      } else if (state != State.SHUTDOWN) {
        return;
      }
    }
    notifyTerminated();
  }

  /** Tells grpc once that this transport takes no new streams. */
  @GuardedBy("lock")
  private void reportShutdown(Status status, DisconnectError error) {
    if (!shutdownReported) {
      shutdownReported = true;
      listener.transportShutdown(status, error);
    }
  }

  /**
   * The call's executor refused its callbacks (a blocking caller that gave up, a bounded pool),
   * whether the loop held the hand-off or another thread ran it: nobody can be told, so the call
   * ends here and the server hears CANCELLED. The connection and its other calls go on.
   */
  void callbacksRefused(ShmClientStream.TransportState ts, RuntimeException refusal) {
    ts.executorRefused(Status.CANCELLED
        .withDescription("the call's executor refused its callbacks: " + refusal)
        .withCause(refusal));
    executorRefusals.log(Level.WARNING, "held", () -> logId + ": stream " + ts.id()
        + " cancelled: its executor refused the call's callbacks (" + refusal + ")");
  }

  private void notifyTerminated() {
    executorRefusals.flush(Level.WARNING, "held", logId + ": calls cancelled because their"
        + " executor refused their callbacks");
    synchronized (lock) {
      if (terminatedNotified) {
        return;
      }
      reportShutdown(shutdownStatus != null ? shutdownStatus
          : Status.UNAVAILABLE.withDescription("shared-memory transport closed"),
          SimpleDisconnectError.UNKNOWN);
      terminatedNotified = true;
      state = State.TERMINATED;
    }
    if (keepAliveManager != null) {
      keepAliveManager.onTransportTermination();
    }
    listener.transportTerminated();
  }

  @Override
  public ClientStream newStream(MethodDescriptor<?, ?> method, Metadata headers,
      CallOptions callOptions, ClientStreamTracer[] tracers) {
    // Taken first: whatever becomes of this stream, a later one of the call never waits.
    Thread blockingCaller = blockingCaller(method, callOptions);
    Attributes attrs = attributes;
    StatsTraceContext statsTraceCtx = StatsTraceContext.newClientContext(tracers, attrs, headers);
    // Without the lock: every caller thread passes here, and profiles of 8 concurrent calls
    // showed them parked on it. start() checks again under the lock.
    Status shutdown = shutdownStatus;
    if (shutdown != null) {
      return new FailingClientStream(shutdown, RpcProgress.MISCARRIED, tracers);
    }
    if (state != State.READY) {
      return new FailingClientStream(
          Status.UNAVAILABLE.withDescription("shared-memory transport not ready"), tracers);
    }
    int maxInbound = config.maxInboundMessageSize();
    ShmConnection.StreamBufferAllocator allocator = connection().clientAllocator(
        method.getFullMethodName(), config.movement(), callOptions);
    return new ShmClientStream(allocator, this, method, headers, callOptions, statsTraceCtx,
        streamTracers, maxInbound, defaultAuthority, attrs, blockingCaller);
  }

  /**
   * The thread of a blocking unary stub's call, which may wait for the answer in a reply mailbox
   * (PROTOCOL.md §7.5) where the server offered them; null otherwise. Only the call's first
   * stream, created on the caller's own thread, qualifies: one created elsewhere (a call that
   * waited for the connection) or later (a transparent retry) has its operations replayed from a
   * queue, and a half-close that waited inside that replay would hold up a cancellation queued
   * behind it.
   */
  private Thread blockingCaller(MethodDescriptor<?, ?> method, CallOptions callOptions) {
    if (method.getType() != MethodDescriptor.MethodType.UNARY
        || !(callOptions.getExecutor() instanceof HoldingExecutor held)) {
      return null;
    }
    Thread caller = held.takeBlockingCaller(); // the call's first stream only
    ShmConnection conn = connection;
    return caller == Thread.currentThread() && conn != null && conn.usesReplyMailboxes()
        ? caller : null;
  }

  /** The UTF-8 path of a method, cached: a channel calls few methods, each of them often. */
  private byte[] encodedPath(String fullMethodName) {
    byte[] path = encodedPaths.get(fullMethodName);
    if (path == null) {
      path = ("/" + fullMethodName).getBytes(StandardCharsets.UTF_8);
      if (encodedPaths.size() < MAX_CACHED_PATHS) {
        encodedPaths.putIfAbsent(fullMethodName, path);
      }
    }
    return path;
  }

  /** Allocates the stream id and sends the request headers (from the stream's start()). */
  void startStream(ShmClientStream stream, Metadata headers, String authority) {
    headers.discardAll(GrpcUtil.USER_AGENT_KEY);
    headers.put(USER_AGENT_BYTES, userAgentBytes);
    FrameCodec.EncodedMetadata md = FrameCodec.prepare(headers);
    byte[] path = encodedPath(stream.methodName());
    byte[] auth = authority == null || authority.equals(defaultAuthority)
        ? defaultAuthorityBytes
        : authority.getBytes(StandardCharsets.UTF_8);
    int bodyLength = FrameCodec.requestHeadersLength(path, auth, md);
    ShmClientStream.TransportState ts = stream.transportState();
    // Its caller waits for the answer right after this (ShmClientStream.Sink#writeFrame).
    ReplyMailbox mailbox = ts.wantsReplyMailbox() ? connection.openReplyMailbox() : null;
    Status failure = null;
    RpcProgress progress = RpcProgress.PROCESSED;
    boolean idsExhausted = false;
    synchronized (lock) {
      if (shutdownStatus != null) {
        failure = goAwayReceived
            ? Status.UNAVAILABLE.withDescription("server sent GOAWAY")
            : shutdownStatus;
        progress = RpcProgress.MISCARRIED;
      } else if (path.length > 0xffff || auth.length > 0xffff
          || FrameLayout.HEADER_LENGTH + bodyLength > connection.maxInlinePayload()) {
        failure = Status.RESOURCE_EXHAUSTED.withDescription(
            "request headers of " + bodyLength + " bytes exceed the shared-memory frame limit");
      } else if (nextStreamId > MAX_STREAM_ID) {
        // Ids exhausted: refuse (grpc retries it on a new transport) and retire this one.
        failure = Status.UNAVAILABLE.withDescription("shared-memory stream ids exhausted");
        progress = RpcProgress.REFUSED;
        idsExhausted = true;
      } else {
        // Id, table and REQUEST_HEADERS under the lock: ids must reach the ring in order.
        int id = nextStreamId;
        nextStreamId += 2;
        ts.assignId(id);
        streams.put(id, ts);
        ActiveStreams.opened();
        if (stream.shouldBeCountedForInUse() && inUseStreams++ == 0) {
          listener.transportInUse(true);
          if (keepAliveManager != null) {
            keepAliveManager.onTransportActive();
          }
        }
        ts.countedInUse = stream.shouldBeCountedForInUse();
        // Encoded last: the scratch body is the thread's, and the listener calls above may send.
        ByteBuffer body = FrameCodec.scratchBody(bodyLength);
        FrameCodec.putString16(body, path);
        FrameCodec.putString16(body, auth);
        FrameCodec.putMetadata(body, md);
        if (mailbox != null) {
          ts.useReplyMailbox(mailbox); // before the server can answer into it
        }
        connection.sendRequestHeaders(id, body.array(), bodyLength, mailbox);
        mailbox = null;
      }
    }
    if (mailbox != null) {
      connection.finishReplyMailbox(mailbox); // never named to the server
    }
    if (failure != null) {
      ts.fail(failure, progress);
      if (idsExhausted) {
        scheduler.execute(() -> shutdown(
            Status.UNAVAILABLE.withDescription("shared-memory stream ids exhausted")));
      }
      return;
    }
    ts.getStatsTraceContext().clientOutboundHeaders();
    ts.allocated();
  }

  /**
   * Forgets a finished stream; once a shut-down transport has none left, closes the connection
   * (which may report the transport terminated before this returns).
   */
  void removeStream(ShmClientStream.TransportState ts) {
    Status closeWith = null;
    synchronized (lock) {
      if (forgetStream(ts) && streams.isEmpty() && shutdownStatus != null) {
        closeWith = shutdownStatus; // graceful shutdown finished: the last stream is done
      }
    }
    ShmConnection conn = connection;
    if (closeWith != null && conn != null) {
      conn.close(closeWith);
    }
  }

  /** The open stream {@code streamId}, or null. */
  private ShmClientStream.TransportState stream(int streamId) {
    synchronized (lock) {
      return streams.get(streamId);
    }
  }

  /**
   * The open stream {@code streamId}, or null, for a part of its answer (headers, data,
   * trailers, reset): a caller waiting in a reply mailbox stops waiting, since the answer comes
   * this way (PROTOCOL.md §7.5). No-op for an answer read from the mailbox itself.
   */
  private ShmClientStream.TransportState answeredStream(int streamId) {
    ShmClientStream.TransportState ts = stream(streamId);
    if (ts != null) {
      ts.abandonReplyMailbox();
    }
    return ts;
  }

  /** A stream operation deferred to another thread failed: a bug, or a peer's bad frame. */
  @Override
  public void streamOperationFailed(RuntimeException e) {
    ShmConnection conn = connection;
    if (conn != null) {
      conn.streamOperationFailed(e);
    }
  }

  /**
   * Fails streams already forgotten by the table, each on its own serializer, then runs {@code
   * after} once every failure has been delivered (some may run later, on the thread that holds
   * their stream): grpc hears of the transport's end only after its streams'.
   */
  private static void failAll(List<ShmClientStream.TransportState> toFail, Status status,
      RpcProgress progress, Runnable after) {
    AtomicInteger remaining = new AtomicInteger(toFail.size() + 1);
    for (ShmClientStream.TransportState ts : toFail) {
      ts.serializer.execute(() -> {
        try {
          ts.fail(status, progress);
        } finally {
          if (remaining.decrementAndGet() == 0) {
            after.run();
          }
        }
      });
    }
    if (remaining.decrementAndGet() == 0) {
      after.run();
    }
  }

  /** Stream bookkeeping only; false if the stream was not (or no longer) open here. */
  @GuardedBy("lock")
  private boolean forgetStream(ShmClientStream.TransportState ts) {
    int id = ts.id();
    if (id < 0 || streams.remove(id) == null) {
      return false;
    }
    ActiveStreams.closed();
    if (ts.countedInUse && --inUseStreams == 0) {
      listener.transportInUse(false);
      if (keepAliveManager != null) {
        keepAliveManager.onTransportIdle();
      }
    }
    return true;
  }

  void sendRst(int streamId, Status status) {
    connection.sendRst(streamId, status);
  }

  @Override
  public void ping(PingCallback callback, Executor executor) {
    Http2Ping ping;
    boolean send = false;
    synchronized (lock) {
      if (shutdownStatus != null || connection == null) {
        Http2Ping.notifyFailed(callback, executor, shutdownStatus != null
            ? shutdownStatus
            : Status.UNAVAILABLE.withDescription("transport not ready"));
        return;
      }
      if (outstandingPing == null) {
        outstandingPing = new Http2Ping(ThreadLocalRandom.current().nextLong(),
            Stopwatch.createStarted());
        send = true;
      }
      ping = outstandingPing;
      ping.addCallback(callback, executor);
      if (send) {
        connection.sendPing(ping.payload());
        streamTracers.keepAliveSent(); // as grpc's Netty transport counts every PING
      }
    }
  }

  @Override
  public void shutdown(Status reason) {
    boolean closeNow;
    synchronized (lock) {
      if (shutdownStatus != null) {
        return;
      }
      shutdownStatus = reason;
      if (state == State.NEW || state == State.HANDSHAKING || state == State.READY) {
        state = state.to(State.SHUTDOWN);
      }
      closeNow = streams.isEmpty();
      reportShutdown(reason, SimpleDisconnectError.SUBCHANNEL_SHUTDOWN);
    }
    ShmConnection conn = connection;
    if (conn == null) {
      notifyTerminated();
    } else if (closeNow) {
      conn.close(reason);
    }
  }

  @Override
  public void shutdownNow(Status reason, DisconnectError disconnectError) {
    shutdownNow(reason);
  }

  @Override
  public void shutdownNow(Status reason) {
    shutdown(reason);
    List<ShmClientStream.TransportState> toFail = new ArrayList<>();
    synchronized (lock) {
      for (ShmClientStream.TransportState ts : new ArrayList<>(streams.values())) {
        if (forgetStream(ts)) {
          toFail.add(ts);
        }
      }
    }
    for (ShmClientStream.TransportState ts : toFail) {
      sendRstIfConnected(ts.id(), reason);
    }
    failAll(toFail, reason, RpcProgress.PROCESSED, () -> {
      ShmConnection conn = connection;
      if (conn != null) {
        conn.close(reason);
      }
    });
  }

  private void sendRstIfConnected(int id, Status reason) {
    ShmConnection conn = connection;
    if (conn != null && conn.isOpen()) {
      sendRst(id, reason);
    }
  }

  @Override
  public Attributes getAttributes() {
    return attributes;
  }

  @Override
  public InternalLogId getLogId() {
    return logId;
  }

  @Override
  public ListenableFuture<SocketStats> getStats() {
    PeerCredentials server = peer;
    String name = rendezvous;
    // Connected: the server process at the rendezvous; before: the address the channel aims at.
    SocketAddress remote = server == null ? remoteAddress
        : new ShmAddress(name, server.pid(), server.uid());
    synchronized (lock) {
      return Futures.immediateFuture(ShmSocketStats.connection(streamTracers.stats(),
          localAddress(), remote, name, server == null ? -1 : server.pid(),
          server == null ? -1 : server.uid(), dataBytesSent.sum(), dataBytesReceived.sum(),
          config.movement()));
    }
  }

  /**
   * This process at the rendezvous name (all the candidates until connected); its uid once
   * connected (a transport that never connects may run where native calls are denied).
   */
  private ShmAddress localAddress() {
    return new ShmAddress(rendezvous, (int) ProcessHandle.current().pid(),
        connection == null ? -1 : Linux.getuid());
  }

  @Override
  public String toString() {
    return "ShmClientTransport{" + logId + ", " + rendezvous + "}";
  }

  /** Frames from the server. */
  private final class Handler implements ShmConnection.Handler {
    private final MetadataArrays metadataArrays = new MetadataArrays();

    @Override
    public void onFrame(int type, int flags, int streamId, ByteBuffer body) {
      if (keepAliveManager != null) {
        keepAliveManager.onDataReceived();
      }
      switch (type) {
        case FrameLayout.TYPE_RESPONSE_HEADERS -> {
          FrameCodec.RequestMetadata md = FrameCodec.getResponseMetadata(body, metadataArrays);
          ShmClientStream.TransportState ts = answeredStream(streamId);
          if (ts == null) {
            return;
          }
          if (md.problem() != null) {
            failStream(ts, streamId, md.problem()); // this stream's problem, not the connection's
            return;
          }
          if (md.listSize() > config.maxInboundMetadataSize()) {
            failStream(ts, streamId, Status.RESOURCE_EXHAUSTED.withDescription(String.format(
                "response metadata of %d bytes exceeds limit %d", md.listSize(),
                config.maxInboundMetadataSize())));
            return;
          }
          ts.serializer.run(ts, md.metadata(), ShmClientStream.TransportState::headersReceived);
        }
        case FrameLayout.TYPE_TRAILERS -> {
          FrameCodec.RequestMetadata md = FrameCodec.getResponseMetadata(body, metadataArrays);
          if (md.problem() != null) {
            ShmClientStream.TransportState ts = answeredStream(streamId);
            if (ts != null) {
              failStream(ts, streamId, md.problem());
            }
            return;
          }
          Metadata trailers = md.metadata();
          Status status = trailers.get(InternalStatus.CODE_KEY);
          if (status == null) {
            status = Status.UNKNOWN.withDescription("missing grpc-status in trailers");
          } else {
            String message = trailers.get(InternalStatus.MESSAGE_KEY);
            if (message != null) {
              status = status.withDescription(message);
            }
          }
          trailers.discardAll(InternalStatus.CODE_KEY);
          trailers.discardAll(InternalStatus.MESSAGE_KEY);
          ShmClientStream.TransportState ts = answeredStream(streamId);
          if (ts == null) {
            return;
          }
          if (md.listSize() > config.maxInboundMetadataSize()) {
            status = Status.RESOURCE_EXHAUSTED.withDescription(String.format(
                "response trailers of %d bytes exceed limit %d", md.listSize(),
                config.maxInboundMetadataSize()));
            trailers = new Metadata();
          }
          removeStream(ts);
          Metadata finalTrailers = trailers;
          Status finalStatus = status;
          if (ts.serializer.tryEnter()) {
            try {
              ts.trailersReceived(finalTrailers, finalStatus);
            } finally {
              ts.serializer.exit();
            }
          } else {
            ts.serializer.defer(() -> ts.trailersReceived(finalTrailers, finalStatus));
          }
        }
        case FrameLayout.TYPE_RST_STREAM -> {
          Status status = FrameCodec.getStatus(body);
          ShmClientStream.TransportState ts = answeredStream(streamId);
          if (ts != null) {
            removeStream(ts);
            ts.serializer.execute(() -> ts.fail(status, RpcProgress.PROCESSED));
          }
        }
        case FrameLayout.TYPE_WINDOW_UPDATE -> {
          int delta = ShmConnection.windowDelta(body);
          ShmClientStream.TransportState ts = stream(streamId);
          if (ts != null) {
            ts.serializer.run(ts, delta, ShmClientStream.TransportState::windowUpdate);
          }
        }
        case FrameLayout.TYPE_PING -> {
          connection.answerPing(body);
        }
        case FrameLayout.TYPE_PING_ACK -> {
          long payload = body.getLong();
          Http2Ping done = null;
          synchronized (lock) {
            if (outstandingPing != null && outstandingPing.payload() == payload) {
              done = outstandingPing;
              outstandingPing = null;
            }
          }
          if (done != null) {
            done.complete();
          }
        }
        case FrameLayout.TYPE_GOAWAY -> onGoAway(body.getInt(), FrameCodec.getStatus(body));
        default -> throw new ProtocolException(
            "unexpected " + FrameLayout.typeName(type) + " frame from server");
      }
    }

    /** Fails one stream for a fault of its own frames and tells the server to stop it. */
    private void failStream(ShmClientStream.TransportState ts, int streamId, Status status) {
      sendRst(streamId, status);
      removeStream(ts);
      ts.serializer.execute(() -> ts.fail(status, RpcProgress.PROCESSED));
    }

    private void onGoAway(int lastStreamId, Status status) {
      Status reason = Status.UNAVAILABLE.withDescription(
          "server is going away: " + status.getDescription());
      boolean closeNow;
      List<ShmClientStream.TransportState> refused = new ArrayList<>();
      synchronized (lock) {
        goAwayReceived = true;
        if (shutdownStatus == null) {
          shutdownStatus = reason;
          if (state == State.READY) {
            state = state.to(State.SHUTDOWN);
          }
        }
        reportShutdown(reason, new GoAwayDisconnectError(GrpcUtil.Http2Error.NO_ERROR));
        for (ShmClientStream.TransportState ts : new ArrayList<>(streams.values())) {
          if (ts.id() > lastStreamId && forgetStream(ts)) {
            refused.add(ts); // never seen by the server: safe to retry elsewhere
          }
        }
        closeNow = streams.isEmpty();
        log.log(Level.FINE, "GOAWAY last={0} remaining streams={1}",
            new Object[] {lastStreamId, streams.keySet()});
      }
      // Failed before the connection closes, so a retry never sees this transport terminated
      // under it.
      failAll(refused, reason, RpcProgress.REFUSED, () -> {
        if (closeNow) {
          connection.close(reason);
        }
      });
    }

    @Override
    public void onData(int streamId, boolean endOfStream, ReadableBuffer data, int wireBytes) {
      if (keepAliveManager != null) {
        keepAliveManager.onDataReceived();
      }
      dataBytesReceived.add(wireBytes);
      ShmClientStream.TransportState ts = answeredStream(streamId);
      if (ts == null) {
        data.close();
        return;
      }
      ts.serializer.run(ts, data, ShmClientStream.TransportState::dataReceived);
    }

    @Override
    public void onHeldExecutionRejected(int streamId, RuntimeException refusal) {
      ShmClientStream.TransportState ts = stream(streamId);
      if (ts != null) {
        callbacksRefused(ts, refusal);
      }
    }

    @Override
    public void onClosed(Status status) {
      Http2Ping ping;
      List<ShmClientStream.TransportState> toFail = new ArrayList<>();
      synchronized (lock) {
        if (shutdownStatus == null) {
          shutdownStatus = status;
        }
        reportShutdown(status, status.getCode() == Status.Code.INTERNAL
            ? SimpleDisconnectError.SOCKET_ERROR : SimpleDisconnectError.CONNECTION_RESET);
        if (state == State.READY || state == State.HANDSHAKING) {
          state = state.to(State.SHUTDOWN);
        }
        for (ShmClientStream.TransportState ts : new ArrayList<>(streams.values())) {
          if (forgetStream(ts)) {
            toFail.add(ts);
          }
        }
        ping = outstandingPing;
        outstandingPing = null;
      }
      if (ping != null) {
        ping.failed(status);
      }
      failAll(toFail, status, RpcProgress.PROCESSED, ShmClientTransport.this::notifyTerminated);
    }
  }

  ShmTransportConfig config() {
    return config;
  }
}
