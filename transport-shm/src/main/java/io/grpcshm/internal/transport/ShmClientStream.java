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
      StreamTracers tracers,
      int maxInboundMessageSize,
      String authority,
      Attributes attributes) {
    super(transport.connection().allocator(MoveContext.lazily(() -> MoveContext.client(
            method.getFullMethodName(), transport.config().movement(), callOptions))),
        statsTraceCtx, tracers.newStream(), headers, callOptions, false);
    this.transport = transport;
    this.method = method;
    this.authority = authority;
    this.attributes = attributes;
    this.state = new TransportState(maxInboundMessageSize, statsTraceCtx, tracers,
        getTransportTracer(), callOptions);
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
      String target = authority;
      if (state.serializer.tryEnter()) {
        try {
          transport.startStream(ShmClientStream.this, metadata, target);
        } finally {
          state.serializer.exit();
        }
      } else {
        state.serializer.defer(
            () -> transport.startStream(ShmClientStream.this, metadata, target));
      }
    }

    @Override
    public void writeFrame(
        WritableBuffer frame, boolean endOfStream, boolean flush, int numMessages) {
      int bytes = frame == null ? 0 : frame.readableBytes();
      if (bytes > 0) {
        onSendingBytes(bytes);
      }
      if (state.serializer.tryEnter()) {
        try {
          state.writeFrame(frame, endOfStream, bytes, numMessages);
        } finally {
          state.serializer.exit();
        }
      } else {
        state.serializer.defer(() -> state.writeFrame(frame, endOfStream, bytes, numMessages));
      }
    }

    @Override
    public void cancel(Status status) {
      state.serializer.execute(() -> state.cancelFromApplication(status));
    }
  }

  /**
   * Per-stream transport state. Every method runs as an operation of {@link #serializer}, grpc's
   * transport thread for this stream; none is called with the transport's lock held.
   */
  final class TransportState extends AbstractClientStream.TransportState {
    final StreamSerializer serializer;
    /** Written once, under the serializer and the transport lock; read under either. */
    private volatile int streamId = -1;
    @GuardedBy("serializer") private OutboundFlow outbound;
    @GuardedBy("serializer") private WritableBuffer earlyFrame;
    @GuardedBy("serializer") private boolean earlyEndOfStream;
    @GuardedBy("serializer") private boolean hasEarlyFrame;
    @GuardedBy("serializer") private boolean cancelSent;
    @GuardedBy("serializer") private boolean closed;
    @GuardedBy("serializer") private int unacknowledgedBytes;
    /** Whether it counts for grpc's in-use accounting (idle-mode decisions). */
    @GuardedBy("transport.lock") boolean countedInUse;
    private final int inboundWindow;

    private final StreamTracers tracers;
    private final TransportTracer tracer;

    TransportState(int maxMessageSize, StatsTraceContext statsTraceCtx, StreamTracers tracers,
        TransportTracer transportTracer, CallOptions options) {
      super(maxMessageSize, statsTraceCtx, transportTracer, options);
      this.tracers = tracers;
      this.tracer = transportTracer;
      this.serializer = new StreamSerializer(transport::streamOperationFailed);
      this.inboundWindow = transport.inboundStreamWindow();
    }

    /** The stream's id, given with its place in the transport's table (under its lock). */
    void assignId(int id) {
      this.streamId = id;
    }

    /** REQUEST_HEADERS went out: the stream may send. */
    @GuardedBy("serializer")
    void allocated() {
      int id = streamId;
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

    @GuardedBy("serializer")
    void writeFrame(WritableBuffer frame, boolean endOfStream, int bytes, int numMessages) {
      sendData(frame, endOfStream);
      transport.dataBytesSent.add(bytes);
      // Per stream, on its serializer: grpc's TransportTracer is not thread-safe.
      getTransportTracer().reportMessageSent(numMessages);
    }

    @GuardedBy("serializer")
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

    @GuardedBy("serializer")
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

    @GuardedBy("serializer")
    /** The delta comes boxed: one update per half window of data, not per message. */
    void windowUpdate(Integer delta) {
      if (outbound != null) {
        outbound.windowUpdate(delta);
      }
    }

    /**
     * True once the stream ended here: frames the loop had already taken for it (it found the
     * stream before the ending operation ran) are dropped.
     */
    private boolean ended() {
      return closed || cancelSent;
    }

    @GuardedBy("serializer")
    void headersReceived(Metadata headers) {
      if (!ended()) {
        inboundHeadersReceived(headers);
      }
    }

    @GuardedBy("serializer")
    void dataReceived(ReadableBuffer data) {
      if (ended()) {
        data.close();
        return;
      }
      inboundDataReceived(data);
    }

    @GuardedBy("serializer")
    void trailersReceived(Metadata trailers, Status status) {
      if (ended()) {
        return;
      }
      closed = true;
      if (outbound != null) {
        outbound.cancel();
      }
      inboundTrailersReceived(trailers, status);
    }

    /** The server reset the stream, or the connection failed. */
    @GuardedBy("serializer")
    void fail(Status status, RpcProgress progress) {
      closed = true;
      if (outbound != null) {
        outbound.cancel();
      }
      transportReportStatus(status, progress, true, new Metadata());
    }

    @Override
    @GuardedBy("serializer")
    public void bytesRead(int processedBytes) {
      if (closed || cancelSent || streamId < 0) {
        return;
      }
      unacknowledgedBytes = transport.connection().acknowledgeInbound(streamId,
          unacknowledgedBytes, processedBytes, inboundWindow);
    }

    @Override
    @GuardedBy("serializer")
    public void deframeFailed(Throwable cause) {
      cancelFromApplication(Status.fromThrowable(cause)); // the server hears RST_STREAM
    }

    @Override
    public void runOnTransportThread(Runnable r) {
      serializer.execute(r);
    }

    /**
     * grpc closes the listener here (or earlier, once the status is reported, if the deframer
     * was already closed): the stream's counts are final, so they join the transport's.
     */
    @Override
    public void deframerClosed(boolean hasPartialMessage) {
      super.deframerClosed(hasPartialMessage);
      tracers.streamClosed(tracer);
    }
  }
}
