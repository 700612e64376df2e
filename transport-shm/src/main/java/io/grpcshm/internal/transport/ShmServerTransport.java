package io.grpcshm.internal.transport;

import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.Grpc;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.InternalLogId;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;
import io.grpc.internal.GrpcAttributes;
import io.grpc.internal.GrpcUtil;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ServerTransport;
import io.grpc.internal.ServerTransportListener;
import io.grpc.internal.SharedResourceHolder;
import io.grpc.internal.StatsTraceContext;
import io.grpcshm.ShmAddress;
import io.grpcshm.TransportPath;
import io.grpcshm.internal.frame.DecodedStrings;
import io.grpcshm.internal.frame.MetadataArrays;
import io.grpcshm.internal.frame.FrameCodec;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.loop.TransportTimer;
import io.grpcshm.internal.movement.ActiveStreams;
import io.netty.util.collection.IntObjectHashMap;
import io.netty.util.collection.IntObjectMap;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Server side of one shared-memory connection, a grpc {@link ServerTransport}.
 *
 * <p>Each stream's transport state is driven by its own {@link StreamSerializer}, which never
 * waits; {@link #lock} guards only the stream table and the transport's own state, and nothing
 * calls out (to grpc's listeners or the application) while holding it. Lock order: a stream's
 * serializer (held, never waited for), then {@link #lock}, then the connection's sender lock.
 */
final class ShmServerTransport implements ServerTransport {
  private static final RateLimitedLog REFUSALS = new RateLimitedLog(
      Logger.getLogger(ShmServerTransport.class.getName()), TimeUnit.MINUTES.toNanos(1));
  /** Characters of a peer-influenced status description that a log line carries. */
  private static final int MAX_LOGGED_DESCRIPTION = 200;

  final Object lock = new Object();
  private final ShmConnection connection;
  private final InternalLogId logId;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final ShmTransportConfig config;
  private final ScheduledExecutorService scheduler;
  final StreamTracers tracers = new StreamTracers();
  private final Attributes baseAttributes;
  private final ShmAddress local;
  private final ShmAddress remote;
  private ServerTransportListener listener;
  private Attributes attributes;

  @GuardedBy("lock") private final IntObjectMap<ShmServerStream.TransportState> streams =
      new IntObjectHashMap<>();
  @GuardedBy("lock") private int lastStreamId;
  @GuardedBy("lock") private boolean goAwaySent;
  /** The loop is between accepting a stream id and adding the stream (see onRequestHeaders). */
  @GuardedBy("lock") private boolean creatingStream;
  /** The connection closed: grpc hears transportTerminated once the last stream is gone. */
  @GuardedBy("lock") private boolean closed;
  @GuardedBy("lock") private boolean terminated;
  /** Message bytes (grpc frames) handed to the connection and received from it, for channelz. */
  final LongAdder dataBytesSent = new LongAdder();
  private final LongAdder dataBytesReceived = new LongAdder();

  public ShmServerTransport(ShmConnection connection, ShmAddress local, ShmAddress remote,
      List<? extends ServerStreamTracer.Factory> tracerFactories, ShmTransportConfig config) {
    this.connection = connection;
    this.tracerFactories = tracerFactories;
    this.config = config;
    // Held for this transport's life: grpc's server schedules call deadlines on it.
    this.scheduler = SharedResourceHolder.get(TransportTimer.RESOURCE);
    this.logId = InternalLogId.allocate(getClass(), remote.toString());
    this.local = local;
    this.remote = remote;
    this.baseAttributes = Attributes.newBuilder()
        .set(Grpc.TRANSPORT_ATTR_REMOTE_ADDR, remote)
        .set(Grpc.TRANSPORT_ATTR_LOCAL_ADDR, local)
        .set(TransportPath.KEY, TransportPath.SHARED_MEMORY)
        .set(GrpcAttributes.ATTR_SECURITY_LEVEL, SecurityLevel.PRIVACY_AND_INTEGRITY)
        .build();
  }

  ShmConnection connection() {
    return connection;
  }

  int inboundStreamWindow() {
    return config.streamWindow();
  }

  /** Announces the transport to grpc's server and starts serving frames. */
  public void start(ServerTransportListener listener) {
    this.listener = listener;
    this.attributes = listener.transportReady(baseAttributes);
    connection.start(new Handler());
  }

  /** Sends response headers or trailers of {@code ts} (one of its serializer's operations). */
  void sendMetadataFrame(int type, ShmServerStream.TransportState ts, Metadata metadata) {
    FrameCodec.EncodedMetadata md = FrameCodec.prepare(metadata);
    if (FrameLayout.HEADER_LENGTH + md.bodyLength() > connection.maxInlinePayload()) {
      // Cannot be framed: fail the call rather than the connection.
      Status st = Status.INTERNAL.withDescription(
          "response metadata of " + md.bodyLength() + " bytes exceeds the shared-memory frame limit");
      ts.cancel(st, st);
      return;
    }
    ByteBuffer body = FrameCodec.scratchBody(md.bodyLength());
    FrameCodec.putMetadata(body, md);
    connection.send(type, 0, ts.streamId, body.array(), 0, md.bodyLength());
  }

  void sendRst(int streamId, Status status) {
    connection.sendRst(streamId, status);
  }

  /** The stream is done (from its serializer); the last one after GOAWAY closes the connection. */
  void removeStream(ShmServerStream.TransportState ts) {
    boolean closeNow;
    boolean terminateNow;
    synchronized (lock) {
      if (streams.remove(ts.streamId) != null) {
        ActiveStreams.closed();
        connection.closeReplyMailbox(ts.streamId); // unanswered there: the client may reuse it
      }
      closeNow = goAwaySent && !closed && !creatingStream && streams.isEmpty();
      terminateNow = takeTerminationLocked();
    }
    if (closeNow) {
      connection.close(Status.UNAVAILABLE.withDescription("server shut down"));
    }
    if (terminateNow) {
      terminated();
    }
  }

  /** True once, when the connection closed and every stream is gone. */
  @GuardedBy("lock")
  private boolean takeTerminationLocked() {
    if (closed && !terminated && streams.isEmpty()) {
      terminated = true;
      return true;
    }
    return false;
  }

  private void terminated() {
    listener.transportTerminated();
    SharedResourceHolder.release(TransportTimer.RESOURCE, scheduler);
  }

  @Override
  public void shutdown() {
    boolean closeNow;
    synchronized (lock) {
      if (goAwaySent) {
        return;
      }
      goAwaySent = true;
      byte[] body = FrameCodec.encodeGoAway(lastStreamId,
          Status.UNAVAILABLE.withDescription("server is shutting down"));
      connection.send(FrameLayout.TYPE_GOAWAY, 0, 0, body, 0, body.length);
      closeNow = streams.isEmpty() && !creatingStream;
    }
    if (closeNow) {
      connection.close(Status.UNAVAILABLE.withDescription("server shut down"));
    }
  }

  private int openStreams() {
    synchronized (lock) {
      return streams.size();
    }
  }

  @Override
  public void shutdownNow(Status reason) {
    List<ShmServerStream.TransportState> open;
    synchronized (lock) {
      goAwaySent = true;
      open = new ArrayList<>(streams.values());
    }
    for (ShmServerStream.TransportState ts : open) {
      ts.serializer.execute(() -> ts.cancel(reason, reason));
    }
    connection.close(reason);
  }

  /** The stream {@code streamId} if it is open; null for one that ended or never existed. */
  private ShmServerStream.TransportState stream(int streamId) {
    synchronized (lock) {
      return streams.get(streamId);
    }
  }

  @Override
  public ScheduledExecutorService getScheduledExecutorService() {
    return scheduler;
  }

  @Override
  public InternalLogId getLogId() {
    return logId;
  }

  @Override
  public ListenableFuture<SocketStats> getStats() {
    return Futures.immediateFuture(ShmSocketStats.connection(tracers.stats(), local,
        remote, remote.rendezvous(), remote.pid(), remote.uid(), dataBytesSent.sum(),
        dataBytesReceived.sum(), config.movement()));
  }

  @Override
  public String toString() {
    return "ShmServerTransport{" + logId + "}";
  }

  /**
   * Fails a stream before it reaches the gRPC layer: RST_STREAM with {@code status}, and at most
   * one log line per {@code key} a minute process-wide (a peer can cause these at will).
   */
  private void refuse(int streamId, String key, Status status) {
    sendRst(streamId, status);
    REFUSALS.log(Level.WARNING, key,
        () -> logId + ": refused stream " + streamId + ": " + brief(status));
  }

  /**
   * grpc's server layer parses {@code grpc-timeout} when it starts a call and throws on a value
   * it cannot read; grpc-java over Netty then resets the stream with INTERNAL_ERROR, which the
   * client reads as INTERNAL. Parse it first, with grpc's own parser, so only the stream fails.
   */
  private static Status checkTimeout(Metadata headers) {
    try {
      headers.get(GrpcUtil.TIMEOUT_KEY);
      return null;
    } catch (IllegalArgumentException e) {
      return Status.INTERNAL.withDescription("malformed grpc-timeout: " + e.getMessage());
    }
  }

  private static Status callStartFailed(RuntimeException e) {
    return Status.INTERNAL.withDescription("server could not start the call: " + e.getMessage());
  }

  /** A status for a log line: code and at most 200 characters of its (peer-influenced) text. */
  private static String brief(Status status) {
    String d = status.getDescription();
    if (d != null && d.length() > MAX_LOGGED_DESCRIPTION) {
      d = d.substring(0, MAX_LOGGED_DESCRIPTION) + "...";
    }
    return d == null ? status.getCode().toString() : status.getCode() + ": " + d;
  }

  /**
   * The server's executor refused a call's callbacks, whether the loop held the hand-off or
   * another thread ran it: as if streamCreated had thrown (startCall), this call fails and the
   * connection stays.
   */
  void callbacksRefused(ShmServerStream.TransportState ts, RuntimeException refusal) {
    Status st = callStartFailed(refusal);
    ts.serializer.execute(() -> ts.cancel(st, st));
    logCallStartFailure(ts.streamId, st, refusal);
  }

  private void logCallStartFailure(int streamId, Status st, RuntimeException cause) {
    REFUSALS.log(Level.WARNING, "call-start", () -> logId + ": stream " + streamId
        + " failed: " + brief(st) + " (" + cause.getClass().getName() + ")");
  }

  private final class Handler implements ShmConnection.Handler {
    private final DecodedStrings strings = new DecodedStrings();
    /** Paths, cached without their leading '/': grpc wants the method name. */
    private final DecodedStrings methods = new DecodedStrings();
    private final MetadataArrays metadataArrays = new MetadataArrays();

    @Override
    public void onFrame(int type, int flags, int streamId, ByteBuffer body) {
      switch (type) {
        case FrameLayout.TYPE_REQUEST_HEADERS -> onRequestHeaders(streamId, body);
        case FrameLayout.TYPE_RST_STREAM -> {
          Status status = FrameCodec.getStatus(body);
          Status cancelled = status.getCode() == Status.Code.OK ? Status.CANCELLED : status;
          ShmServerStream.TransportState ts = stream(streamId);
          if (ts != null) {
            ts.serializer.execute(() -> ts.cancel(cancelled, null));
          }
        }
        case FrameLayout.TYPE_WINDOW_UPDATE -> {
          int delta = ShmConnection.windowDelta(body);
          ShmServerStream.TransportState ts = stream(streamId);
          if (ts != null) {
            ts.serializer.run(ts, delta, ShmServerStream.TransportState::windowUpdate);
          }
        }
        case FrameLayout.TYPE_PING -> {
          connection.answerPing(body);
        }
        case FrameLayout.TYPE_PING_ACK -> { }
        default -> throw new ProtocolException(
            "unexpected " + FrameLayout.typeName(type) + " frame from client");
      }
    }

    /** Loop thread: whether the REQUEST_HEADERS being handled opened its reply mailbox. */
    private boolean requestMailboxOpened;

    private void onRequestHeaders(int streamId, ByteBuffer body) {
      int mailboxPage = connection.takeReplyMailboxPage();
      requestMailboxOpened = false;
      try {
        onRequestHeaders(streamId, body, mailboxPage);
      } finally {
        if (!requestMailboxOpened) {
          connection.releaseReplyMailboxPage(mailboxPage); // never a stream: no answer there
        }
      }
    }

    /** Opens the stream; sets {@link #requestMailboxOpened} once its mailbox (if any) is open. */
    private void onRequestHeaders(int streamId, ByteBuffer body, int mailboxPage) {
      int pathAt = body.position();
      String method = methods.getString16(body, "path", 1); // valid only if the path is "/..."
      int pathStart = pathAt + FrameLayout.STRING16_LENGTH_BYTES;
      int pathLength = body.position() - pathStart;
      // "/" plus at least one character; the cached method name is the part after the "/".
      boolean wellFormed = pathLength >= 2 && body.get(pathStart) == '/';
      String authority = strings.getString16(body, "authority");
      FrameCodec.RequestMetadata md = FrameCodec.getRequestMetadata(body, metadataArrays);
      synchronized (lock) {
        if (streamId <= lastStreamId || (streamId & 1) == 0) {
          throw new ProtocolException("stream id " + streamId + " not above " + lastStreamId);
        }
        if (goAwaySent) {
          return; // the client fails it as refused when it reads our GOAWAY
        }
        lastStreamId = streamId;
        creatingStream = true;
      }
      // From here on every error belongs to this stream alone (PROTOCOL.md §8, §12). The checks
      // and the stream tracers (application code) run without the lock.
      ShmServerStream stream = null;
      boolean added = false;
      try {
        stream = newStream(streamId, wellFormed, method, pathStart, pathLength, authority, md,
            body);
      } finally {
        boolean closeNow;
        synchronized (lock) {
          creatingStream = false;
          if (stream != null && !closed) {
            streams.put(streamId, stream.transportState());
            added = true;
            if (mailboxPage >= 0) {
              // Before anything can answer the stream: its first frame already goes there.
              connection.openReplyMailbox(streamId, mailboxPage);
              requestMailboxOpened = true; // from now on the stream's end releases the page
            }
          }
          closeNow = goAwaySent && !closed && streams.isEmpty();
        }
        if (closeNow) {
          connection.close(Status.UNAVAILABLE.withDescription("server shut down"));
        }
        if (stream != null && !added) {
          stream.giveBackTracer(); // the transport closed first: nobody will start the call
        }
        if (added) {
          ActiveStreams.opened();
          ShmServerStream started = stream;
          // Nobody else knows the stream yet; from here on its serializer orders what happens
          // to it (a shutdownNow or a RST arriving meanwhile waits its turn).
          started.transportState().serializer.execute(
              () -> startCall(started, method, md.metadata()));
        }
      }
    }

    /** The stream a request asks for, or null after refusing it with RST_STREAM. */
    private ShmServerStream newStream(int streamId, boolean wellFormed, String method,
        int pathStart, int pathLength, String authority, FrameCodec.RequestMetadata md,
        ByteBuffer body) {
      // Only this thread (the loop) adds streams, so the count cannot grow past the check.
      int limit = config.maxConcurrentCallsPerConnection();
      if (openStreams() >= limit) {
        // HTTP/2 would answer REFUSED_STREAM, which grpc reads as UNAVAILABLE: nothing ran.
        refuse(streamId, "stream-limit", Status.UNAVAILABLE.withDescription(
            "too many concurrent calls on this shared-memory connection (limit " + limit
                + ", maxConcurrentCallsPerConnection)"));
        return null;
      }
      if (!wellFormed) {
        String path = new String(body.array(), body.arrayOffset() + pathStart, pathLength,
            StandardCharsets.UTF_8);
        refuse(streamId, "bad-request",
            Status.UNIMPLEMENTED.withDescription("malformed method path " + path));
        return null;
      }
      if (md.problem() != null) {
        refuse(streamId, "bad-request", md.problem());
        return null;
      }
      if (md.listSize() > config.maxInboundMetadataSize()) {
        refuse(streamId, "bad-request", Status.RESOURCE_EXHAUSTED.withDescription(
            String.format("Request metadata larger than %d: %d",
                config.maxInboundMetadataSize(), md.listSize())));
        return null;
      }
      Metadata headers = md.metadata();
      Status badTimeout = checkTimeout(headers);
      if (badTimeout != null) {
        refuse(streamId, "bad-request", badTimeout);
        return null;
      }
      StatsTraceContext statsTraceCtx;
      try {
        // Stream tracer factories read the metadata too, and may reject it.
        statsTraceCtx = StatsTraceContext.newServerContext(tracerFactories, method, headers);
      } catch (RuntimeException e) {
        refuse(streamId, "call-start", callStartFailed(e));
        return null;
      }
      return new ShmServerStream(ShmServerTransport.this, streamId, method, statsTraceCtx,
          tracers.newStream(), config.maxInboundMessageSize(), attributes, authority);
    }

    private void startCall(ShmServerStream stream, String method, Metadata headers) {
      ShmServerStream.TransportState ts = stream.transportState();
      int streamId = ts.streamId;
      try {
        listener.streamCreated(stream, method, headers);
      } catch (RuntimeException e) {
        // Like grpc-java over Netty, which answers RST_STREAM(INTERNAL_ERROR) when the server
        // layer throws while starting a call: this stream fails, the connection stays.
        Status st = callStartFailed(e);
        if (ts.hasListener()) {
          ts.cancel(st, st); // the server layer knows the call: tell it too
        } else {
          sendRst(streamId, st);
          removeStream(ts);
          stream.giveBackTracer(); // no listener will close
        }
        logCallStartFailure(streamId, st, e);
        return;
      }
      ts.onStreamAllocated();
    }

    @Override
    public void onData(int streamId, boolean endOfStream, ReadableBuffer data, int wireBytes) {
      dataBytesReceived.add(wireBytes);
      ShmServerStream.TransportState ts = stream(streamId);
      if (ts == null) {
        data.close();
        return;
      }
      ts.serializer.run(ts, data, endOfStream
          ? ShmServerStream.TransportState::lastDataReceived
          : ShmServerStream.TransportState::dataReceived);
    }

    @Override
    public void onHeldExecutionRejected(int streamId, RuntimeException refusal) {
      ShmServerStream.TransportState ts = stream(streamId);
      if (ts != null) {
        callbacksRefused(ts, refusal);
      }
    }

    @Override
    public void onClosed(Status status) {
      List<ShmServerStream.TransportState> open;
      boolean terminateNow;
      synchronized (lock) {
        goAwaySent = true;
        closed = true;
        open = new ArrayList<>(streams.values());
        terminateNow = takeTerminationLocked();
      }
      // Each cancel removes its stream; the last removal reports the termination.
      for (ShmServerStream.TransportState ts : open) {
        ts.serializer.execute(() -> ts.cancel(status, null));
      }
      if (terminateNow) {
        terminated();
      }
    }
  }

  ShmTransportConfig config() {
    return config;
  }
}
