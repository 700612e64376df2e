package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.internal.AbstractClientStream;
import io.grpc.internal.ClientStreamListener.RpcProgress;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import io.grpc.internal.WritableBuffer;
import io.grpcshm.internal.movement.MoveContext;

/** The client half of a call over shared memory. State lives in {@link TransportState}. */
final class ShmClientStream extends AbstractClientStream {
  private final ShmClientTransport transport;
  private final MethodDescriptor<?, ?> method;
  private final TransportState state;
  private final Sink sink = new Sink();
  private final Attributes attributes;
  private String authority;

  ShmClientStream(
      ShmClientTransport transport,
      MethodDescriptor<?, ?> method,
      Metadata headers,
      CallOptions callOptions,
      StatsTraceContext statsTraceCtx,
      TransportTracer transportTracer,
      int maxInboundMessageSize,
      String authority,
      Attributes attributes) {
    super(transport.connection().allocator(MoveContext.lazily(() -> MoveContext.client(
            method.getFullMethodName(), transport.config().movement(), callOptions))),
        statsTraceCtx, transportTracer, headers, callOptions, false);
    this.transport = transport;
    this.method = method;
    this.authority = authority;
    this.attributes = attributes;
    this.state = new TransportState(maxInboundMessageSize, statsTraceCtx, transportTracer,
        callOptions);
  }

  @Override
  protected TransportState transportState() {
    return state;
  }

  @Override
  protected Sink abstractClientStreamSink() {
    return sink;
  }

  @Override
  public void setAuthority(String authority) {
    this.authority = authority;
  }

  @Override
  public Attributes getAttributes() {
    return attributes;
  }

  String methodName() {
    return method.getFullMethodName();
  }

  private final class Sink implements AbstractClientStream.Sink {
    @Override
    public void writeHeaders(Metadata metadata, byte[] payload) {
      // payload is only for GET requests, which this transport never asks for.
      transport.startStream(ShmClientStream.this, metadata, authority);
    }

    @Override
    public void writeFrame(
        WritableBuffer frame, boolean endOfStream, boolean flush, int numMessages) {
      int bytes = frame == null ? 0 : frame.readableBytes();
      if (bytes > 0) {
        onSendingBytes(bytes);
      }
      synchronized (transport.lock) {
        state.sendData(frame, endOfStream);
        // Under the lock: grpc's TransportTracer is not thread-safe.
        transport.dataBytesSent.add(bytes);
        getTransportTracer().reportMessageSent(numMessages);
      }
    }

    @Override
    public void cancel(Status status) {
      synchronized (transport.lock) {
        state.cancelFromApplication(status);
      }
    }
  }

  /** Per-stream transport state; all methods run under the transport lock. */
  final class TransportState extends AbstractClientStream.TransportState {
    @GuardedBy("transport.lock") private int streamId = -1;
    @GuardedBy("transport.lock") private OutboundFlow outbound;
    @GuardedBy("transport.lock") private WritableBuffer earlyFrame;
    @GuardedBy("transport.lock") private boolean earlyEndOfStream;
    @GuardedBy("transport.lock") private boolean hasEarlyFrame;
    @GuardedBy("transport.lock") private boolean cancelSent;
    @GuardedBy("transport.lock") private boolean closed;
    @GuardedBy("transport.lock") private int unacknowledgedBytes;
    /** Whether it counts for grpc's in-use accounting (idle-mode decisions). */
    @GuardedBy("transport.lock") boolean countedInUse;
    private final int inboundWindow;

    TransportState(int maxMessageSize, StatsTraceContext statsTraceCtx,
        TransportTracer transportTracer, CallOptions options) {
      super(maxMessageSize, statsTraceCtx, transportTracer, options);
      this.inboundWindow = transport.inboundStreamWindow();
    }

    @GuardedBy("transport.lock")
    void allocated(int id) {
      this.streamId = id;
      this.outbound = new OutboundFlow(transport.connection(), id,
          transport.connection().peerStreamWindow(), this::onSentBytes);
      onStreamAllocated();
      getTransportTracer().reportLocalStreamStarted();
      if (hasEarlyFrame) {
        hasEarlyFrame = false;
        outbound.data(earlyFrame, earlyEndOfStream);
        earlyFrame = null;
      }
    }

    int id() {
      return streamId;
    }

    @GuardedBy("transport.lock")
    void sendData(WritableBuffer frame, boolean endOfStream) {
      if (cancelSent || closed) {
        if (frame != null) {
          frame.release();
        }
        return;
      }
      if (outbound == null) {
        // Not started yet (headers not sent); grpc never writes before start, but be safe.
        hasEarlyFrame = true;
        earlyFrame = frame;
        earlyEndOfStream = endOfStream;
        return;
      }
      outbound.data(frame, endOfStream);
    }

    @GuardedBy("transport.lock")
    void cancelFromApplication(Status status) {
      if (cancelSent) {
        return;
      }
      cancelSent = true;
      if (outbound != null) {
        outbound.cancel();
      }
      if (streamId > 0 && !closed) {
        transport.sendRst(streamId, status);
      }
      transport.removeStream(this);
      transportReportStatus(status, true, new Metadata());
    }

    @GuardedBy("transport.lock")
    void windowUpdate(int delta) {
      if (outbound != null) {
        outbound.windowUpdate(delta);
      }
    }

    @GuardedBy("transport.lock")
    void headersReceived(Metadata headers) {
      inboundHeadersReceived(headers);
    }

    @GuardedBy("transport.lock")
    void dataReceived(ReadableBuffer data) {
      inboundDataReceived(data);
    }

    @GuardedBy("transport.lock")
    void trailersReceived(Metadata trailers, Status status) {
      closed = true;
      if (outbound != null) {
        outbound.cancel();
      }
      inboundTrailersReceived(trailers, status);
    }

    /** The server reset the stream, or the connection failed. */
    @GuardedBy("transport.lock")
    void fail(Status status, RpcProgress progress) {
      closed = true;
      if (outbound != null) {
        outbound.cancel();
      }
      transportReportStatus(status, progress, true, new Metadata());
    }

    @Override
    @GuardedBy("transport.lock")
    public void bytesRead(int processedBytes) {
      if (closed || cancelSent || streamId < 0) {
        return;
      }
      unacknowledgedBytes += processedBytes;
      if (unacknowledgedBytes >= inboundWindow / 2) {
        transport.sendWindowUpdate(streamId, unacknowledgedBytes);
        unacknowledgedBytes = 0;
      }
    }

    @Override
    @GuardedBy("transport.lock")
    public void deframeFailed(Throwable cause) {
      Status status = Status.fromThrowable(cause);
      cancelFromApplication(status);
    }

    @Override
    public void runOnTransportThread(Runnable r) {
      synchronized (transport.lock) {
        r.run();
      }
    }
  }
}
