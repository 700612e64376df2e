package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.ProtocolException;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.AbstractServerStream;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ServerStreamListener;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import io.grpc.internal.WritableBuffer;

/** The server half of a call over shared memory. */
final class ShmServerStream extends AbstractServerStream {
  private final ShmServerTransport transport;
  private final TransportState state;
  private final Sink sink = new Sink();
  private final Attributes attributes;
  private final String authority;
  private final TransportTracer transportTracer;
  /**
   * Whether the tracer went back to the transport for a later stream. Set on the stream's
   * serializer, or before any other thread knows the stream.
   */
  private boolean tracerGivenBack;

  ShmServerStream(ShmServerTransport transport, int streamId, String method,
      StatsTraceContext statsTraceCtx, TransportTracer transportTracer, int maxInboundMessageSize,
      Attributes attributes, String authority) {
    super(transport.connection().serverAllocator(method, transport.config().movement()),
        statsTraceCtx);
    this.transport = transport;
    this.attributes = attributes;
    this.authority = authority;
    this.transportTracer = transportTracer;
    this.state = new TransportState(streamId, maxInboundMessageSize, statsTraceCtx,
        transportTracer);
  }

  /**
   * Gives this stream's tracer back for a later stream, once: when grpc closed the listener, or
   * when the stream ended without one (refused at its start, or the transport closed first).
   */
  void giveBackTracer() {
    if (!tracerGivenBack) {
      tracerGivenBack = true;
      transport.tracers.streamClosed(transportTracer);
    }
  }

  @Override
  protected TransportState transportState() {
    return state;
  }

  @Override
  protected Sink abstractServerStreamSink() {
    return sink;
  }

  @Override
  public int streamId() {
    return state.streamId;
  }

  @Override
  public Attributes getAttributes() {
    return attributes;
  }

  @Override
  public String getAuthority() {
    return authority;
  }

  private final class Sink implements AbstractServerStream.Sink {
    @Override
    public void writeHeaders(Metadata headers, boolean flush) {
      // Unflushed headers (a call with one response message) leave with that message.
      state.serializer.run(state, headers,
          flush ? TransportState::writeHeaders : TransportState::holdHeaders);
    }

    @Override
    public void writeFrame(WritableBuffer frame, boolean flush, int numMessages) {
      int bytes = frame.readableBytes();
      if (bytes > 0) {
        onSendingBytes(bytes);
      }
      if (state.serializer.tryEnter()) {
        try {
          state.writeFrame(frame, flush, bytes, numMessages);
        } finally {
          state.serializer.exit();
        }
      } else {
        state.serializer.defer(() -> state.writeFrame(frame, flush, bytes, numMessages));
      }
    }

    @Override
    public void writeTrailers(Metadata trailers, boolean headersSent, Status status) {
      state.serializer.execute(() -> state.writeTrailers(trailers, status));
    }

    @Override
    public void cancel(Status status) {
      // The application (or its deadline) cancelled: like an HTTP/2 RST_STREAM(CANCEL), the client
      // sees CANCELLED and maps it to its own view (e.g. DEADLINE_EXCEEDED past its deadline).
      state.serializer.execute(() -> state.cancel(status, Status.CANCELLED.withDescription(
          "server cancelled the call: " + status.getCode())));
    }
  }

  /** Forwards to grpc's listener; once it closes, the stream's counts join the transport's. */
  private final class CountingListener implements ServerStreamListener {
    private final ServerStreamListener delegate;

    CountingListener(ServerStreamListener delegate) {
      this.delegate = delegate;
    }

    @Override
    public void messagesAvailable(MessageProducer producer) {
      delegate.messagesAvailable(producer);
    }

    @Override
    public void onReady() {
      delegate.onReady();
    }

    @Override
    public void halfClosed() {
      delegate.halfClosed();
    }

    @Override
    public void closed(Status status) {
      giveBackTracer();
      delegate.closed(status);
    }
  }

  /**
   * Per-stream transport state. Every method runs as an operation of {@link #serializer}, grpc's
   * transport thread for this stream; none is called with the transport's lock held.
   */
  final class TransportState extends AbstractServerStream.TransportState
      implements OutboundFlow.SentListener, StreamSerializer.RefusalListener {
    final int streamId;
    final StreamSerializer serializer;
    @GuardedBy("serializer") final OutboundFlow outbound;
    @GuardedBy("serializer") private boolean cancelled;
    /** Response headers grpc did not ask to flush: sent just before the first data or trailers. */
    @GuardedBy("serializer") private Metadata heldHeaders;
    @GuardedBy("serializer") private boolean receivedEndOfStream;
    @GuardedBy("serializer") private int unacknowledgedBytes;
    private final int inboundWindow;
    /** Created on first use, from the transport thread of this stream only. */
    private ServerStreamListener countingListener;

    @Override
    public void callbacksRefused(java.util.concurrent.RejectedExecutionException refusal) {
      transport.callbacksRefused(this, refusal);
    }

    TransportState(int streamId, int maxMessageSize, StatsTraceContext statsTraceCtx,
        TransportTracer transportTracer) {
      super(maxMessageSize, statsTraceCtx, transportTracer);
      this.streamId = streamId;
      this.serializer = new StreamSerializer(transport.connection(), this);
      this.inboundWindow = transport.inboundStreamWindow();
      this.outbound = new OutboundFlow(transport.connection(), streamId,
          transport.connection().peerStreamWindow(), this);
    }

    /** Whether the gRPC layer took the stream (set its listener). */
    boolean hasListener() {
      return super.listener() != null;
    }

    /**
     * grpc's listener, seen through one that folds this stream's tracer into the transport's
     * totals when it closes (grpc counts the close in the tracer just before).
     */
    @Override
    protected ServerStreamListener listener() {
      ServerStreamListener wrapped = countingListener;
      if (wrapped == null) {
        ServerStreamListener listener = super.listener();
        if (listener == null) {
          return null;
        }
        countingListener = wrapped = new CountingListener(listener);
      }
      return wrapped;
    }

    @GuardedBy("serializer")
    void writeHeaders(Metadata headers) {
      if (!cancelled) {
        transport.sendMetadataFrame(FrameLayout.TYPE_RESPONSE_HEADERS, this, headers);
      }
    }

    @GuardedBy("serializer")
    void holdHeaders(Metadata headers) {
      if (!cancelled) {
        heldHeaders = headers;
      }
    }

    @GuardedBy("serializer")
    private void sendHeldHeaders() {
      Metadata headers = heldHeaders;
      if (headers != null) {
        heldHeaders = null;
        writeHeaders(headers);
      }
    }

    @GuardedBy("serializer")
    void writeFrame(WritableBuffer frame, boolean flush, int bytes, int numMessages) {
      if (cancelled) {
        frame.release();
        return;
      }
      if (flush || !outbound.tryHold(frame)) {
        sendHeldHeaders();
        outbound.data(frame, false);
      }
      transport.dataBytesSent.add(bytes);
      if (!tracerGivenBack) { // once given back, another stream may be counting in it
        transportTracer.reportMessageSent(numMessages);
      }
    }

    @GuardedBy("serializer")
    void writeTrailers(Metadata trailers, Status status) {
      if (cancelled) {
        return;
      }
      sendHeldHeaders();
      outbound.afterData(() -> {
        // The tracers record the call's end before the client can see its trailers: a client
        // that starts its next call at once would otherwise have that call's start recorded
        // here (on the loop) before this call's end (on this thread). Netty's single event
        // loop gives that order; grpc's interop suite checks it. complete() records nothing
        // again (the first streamClosed wins) and tells the listener.
        getStatsTraceContext().streamClosed(status);
        transport.sendMetadataFrame(FrameLayout.TYPE_TRAILERS, this, trailers);
        transport.removeStream(this);
        complete();
      });
    }

    @GuardedBy("serializer")
    /** The delta comes boxed: one update per half window of data, not per message. */
    void windowUpdate(Integer delta) {
      outbound.windowUpdate(delta);
    }

    @GuardedBy("serializer")
    void dataReceived(ReadableBuffer data) {
      dataReceived(data, false);
    }

    @GuardedBy("serializer")
    void lastDataReceived(ReadableBuffer data) {
      dataReceived(data, true);
    }

    @GuardedBy("serializer")
    private void dataReceived(ReadableBuffer data, boolean endOfStream) {
      if (receivedEndOfStream) {
        data.close();
        throw new ProtocolException("data on stream " + streamId + " after its END_STREAM");
      }
      receivedEndOfStream = endOfStream;
      if (cancelled) {
        data.close();
        return;
      }
      inboundDataReceived(data, endOfStream);
    }

    /**
     * Cancels the stream: tells the client {@code toClient} (null: the client already knows) and
     * the application {@code status}.
     */
    @GuardedBy("serializer")
    void cancel(Status status, Status toClient) {
      if (cancelled) {
        return;
      }
      cancelled = true;
      heldHeaders = null;
      outbound.cancel();
      if (toClient != null) {
        // As for trailers: the tracers record the end before the client can see the reset.
        getStatsTraceContext().streamClosed(status);
        transport.sendRst(streamId, toClient);
      }
      transport.removeStream(this);
      transportReportStatus(status);
    }

    @Override
    @GuardedBy("serializer")
    public void bytesRead(int processedBytes) {
      if (cancelled) {
        return;
      }
      unacknowledgedBytes = transport.connection().acknowledgeInbound(streamId,
          unacknowledgedBytes, processedBytes, inboundWindow);
    }

    @Override
    @GuardedBy("serializer")
    public void deframeFailed(Throwable cause) {
      // A bad inbound message (too large, undecompressable): the client learns the real status.
      Status status = Status.fromThrowable(cause);
      cancel(status, status);
    }

    @Override
    public void runOnTransportThread(Runnable r) {
      serializer.execute(r);
    }
  }
}
