package io.grpcshm.internal.transport;

import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.SettableFuture;
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
import io.grpc.internal.TransportTracer;
import io.grpcshm.ShmAddress;
import io.grpcshm.TransportPath;
import io.grpcshm.internal.movement.ActiveStreams;
import io.grpcshm.internal.ring.FrameLayout;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;

/**
 * Server side of one shared-memory connection, a grpc {@link ServerTransport}.
 *
 * <p>Lock order: {@link #lock} (streams and their transport state), then the connection's producer
 * lock.
 */
public final class ShmServerTransport implements ServerTransport {
  final Object lock = new Object();
  private final ShmConnection connection;
  private final InternalLogId logId;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final ShmTransportConfig config;
  private final ScheduledExecutorService scheduler;
  private final TransportTracer transportTracer = new TransportTracer();
  private final Attributes baseAttributes;
  private ServerTransportListener listener;
  private Attributes attributes;

  @GuardedBy("lock") private final Map<Integer, ShmServerStream.TransportState> streams =
      new HashMap<>();
  @GuardedBy("lock") private int lastStreamId;
  @GuardedBy("lock") private boolean goAwaySent;
  @GuardedBy("lock") private boolean terminated;

  public ShmServerTransport(ShmConnection connection, ShmAddress local, ShmAddress remote,
      List<? extends ServerStreamTracer.Factory> tracerFactories, ShmTransportConfig config) {
    this.connection = connection;
    this.tracerFactories = tracerFactories;
    this.config = config;
    // Held for this transport's life: grpc's server schedules call deadlines on it.
    this.scheduler = SharedResourceHolder.get(GrpcUtil.TIMER_SERVICE);
    this.logId = InternalLogId.allocate(getClass(), remote.toString());
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

  @GuardedBy("lock")
  void sendMetadataFrame(int type, int streamId, Metadata metadata) {
    FrameCodec.EncodedMetadata md = FrameCodec.prepare(metadata);
    if (FrameLayout.HEADER_LENGTH + md.bodyLength() > connection.maxInlinePayload()) {
      // Cannot be framed: fail the call rather than the connection.
      Status st = Status.INTERNAL.withDescription(
          "response metadata of " + md.bodyLength() + " bytes exceeds the shared-memory frame limit");
      ShmServerStream.TransportState ts = streams.get(streamId);
      if (ts != null) {
        ts.cancel(st, st);
      }
      return;
    }
    ByteBuffer body = FrameCodec.newBody(md.bodyLength());
    FrameCodec.putMetadata(body, md);
    connection.send(type, 0, streamId, body.array(), 0, md.bodyLength());
  }

  void sendRst(int streamId, Status status) {
    byte[] body = FrameCodec.encodeStatus(status);
    connection.send(FrameLayout.TYPE_RST_STREAM, 0, streamId, body, 0, body.length);
  }

  void sendWindowUpdate(int streamId, int delta) {
    connection.send(FrameLayout.TYPE_WINDOW_UPDATE, 0, streamId, FrameCodec.encodeInt(delta), 0,
        4);
  }

  @GuardedBy("lock")
  void removeStream(ShmServerStream.TransportState ts) {
    if (streams.remove(ts.streamId) != null) {
      ActiveStreams.closed();
    }
    if (goAwaySent && streams.isEmpty()) {
      connection.close(Status.UNAVAILABLE.withDescription("server shut down"));
    }
  }

  @Override
  public void shutdown() {
    synchronized (lock) {
      if (goAwaySent) {
        return;
      }
      goAwaySent = true;
      byte[] body = FrameCodec.encodeGoAway(lastStreamId,
          Status.UNAVAILABLE.withDescription("server is shutting down"));
      connection.send(FrameLayout.TYPE_GOAWAY, 0, 0, body, 0, body.length);
      if (streams.isEmpty()) {
        connection.close(Status.UNAVAILABLE.withDescription("server shut down"));
      }
    }
  }

  @Override
  public void shutdownNow(Status reason) {
    synchronized (lock) {
      goAwaySent = true;
      for (ShmServerStream.TransportState ts : new ArrayList<>(streams.values())) {
        ts.cancel(reason, reason);
      }
    }
    connection.close(reason);
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
    SettableFuture<SocketStats> f = SettableFuture.create();
    f.set(null);
    return f;
  }

  @Override
  public String toString() {
    return "ShmServerTransport{" + logId + "}";
  }

  private final class Handler implements ShmConnection.Handler {
    @Override
    public void onFrame(int type, int flags, int streamId, ByteBuffer body) {
      switch (type) {
        case FrameLayout.TYPE_REQUEST_HEADERS -> onRequestHeaders(streamId, body);
        case FrameLayout.TYPE_RST_STREAM -> {
          Status status = FrameCodec.getStatus(body);
          synchronized (lock) {
            ShmServerStream.TransportState ts = streams.get(streamId);
            if (ts != null) {
              ts.cancel(status.getCode() == Status.Code.OK ? Status.CANCELLED : status, null);
            }
          }
        }
        case FrameLayout.TYPE_WINDOW_UPDATE -> {
          int delta = body.getInt();
          if (delta <= 0) {
            throw new ProtocolException("WINDOW_UPDATE with delta " + delta);
          }
          synchronized (lock) {
            ShmServerStream.TransportState ts = streams.get(streamId);
            if (ts != null) {
              ts.outbound.windowUpdate(delta);
            }
          }
        }
        case FrameLayout.TYPE_PING -> {
          long payload = body.getLong();
          connection.send(FrameLayout.TYPE_PING_ACK, 0, 0, FrameCodec.encodeLong(payload), 0, 8);
        }
        case FrameLayout.TYPE_PING_ACK -> { }
        default -> throw new ProtocolException(
            "unexpected " + FrameLayout.typeName(type) + " frame from client");
      }
    }

    private void onRequestHeaders(int streamId, ByteBuffer body) {
      String path = FrameCodec.getString16(body, "path");
      String authority = FrameCodec.getString16(body, "authority");
      FrameCodec.DecodedMetadata md = FrameCodec.getMetadata(body);
      synchronized (lock) {
        if (streamId <= lastStreamId || (streamId & 1) == 0) {
          throw new ProtocolException("stream id " + streamId + " not above " + lastStreamId);
        }
        if (goAwaySent) {
          return; // the client fails it as refused when it reads our GOAWAY
        }
        lastStreamId = streamId;
        if (!path.startsWith("/") || path.length() < 2) {
          sendRst(streamId, Status.UNIMPLEMENTED.withDescription("malformed method path " + path));
          return;
        }
        if (md.listSize() > config.maxInboundMetadataSize()) {
          sendRst(streamId, Status.RESOURCE_EXHAUSTED.withDescription(String.format(
              "Request metadata larger than %d: %d", config.maxInboundMetadataSize(),
              md.listSize())));
          return;
        }
        String method = path.substring(1);
        Metadata headers = md.metadata();
        StatsTraceContext statsTraceCtx =
            StatsTraceContext.newServerContext(tracerFactories, method, headers);
        ShmServerStream stream = new ShmServerStream(ShmServerTransport.this, streamId, method,
            statsTraceCtx, transportTracer, config.maxInboundMessageSize(), attributes,
            authority);
        streams.put(streamId, stream.transportState());
        ActiveStreams.opened();
        listener.streamCreated(stream, method, headers);
        stream.transportState().onStreamAllocated();
      }
    }

    @Override
    public void onData(int streamId, boolean endOfStream, ReadableBuffer data, int wireBytes) {
      synchronized (lock) {
        ShmServerStream.TransportState ts = streams.get(streamId);
        if (ts == null) {
          data.close();
          return;
        }
        ts.dataReceived(data, endOfStream);
      }
    }

    @Override
    public void onClosed(Status status) {
      synchronized (lock) {
        goAwaySent = true;
        for (ShmServerStream.TransportState ts : new ArrayList<>(streams.values())) {
          ts.cancel(status, null);
        }
        if (terminated) {
          return;
        }
        terminated = true;
      }
      listener.transportTerminated();
      SharedResourceHolder.release(GrpcUtil.TIMER_SERVICE, scheduler);
    }
  }

  ShmTransportConfig config() {
    return config;
  }
}
