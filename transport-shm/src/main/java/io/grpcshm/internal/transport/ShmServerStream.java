package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Attributes;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.internal.AbstractServerStream;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.StatsTraceContext;
import io.grpc.internal.TransportTracer;
import io.grpc.internal.WritableBuffer;
import io.grpcshm.internal.movement.MoveContext;

/** The server half of a call over shared memory. */
final class ShmServerStream extends AbstractServerStream {
  private final ShmServerTransport transport;
  private final TransportState state;
  private final Sink sink = new Sink();
  private final Attributes attributes;
  private final String authority;
  private final TransportTracer transportTracer;

  ShmServerStream(ShmServerTransport transport, int streamId, String method,
      StatsTraceContext statsTraceCtx, TransportTracer transportTracer, int maxInboundMessageSize,
      Attributes attributes, String authority) {
    super(transport.connection().allocator(MoveContext.lazily(
        () -> MoveContext.server(method, transport.config().movement()))), statsTraceCtx);
    this.transport = transport;
    this.attributes = attributes;
    this.authority = authority;
    this.transportTracer = transportTracer;
    this.state = new TransportState(streamId, maxInboundMessageSize, statsTraceCtx,
        transportTracer);
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
      synchronized (state.lock) {
        if (!state.cancelled) {
          transport.sendMetadataFrame(io.grpcshm.internal.ring.FrameLayout.TYPE_RESPONSE_HEADERS,
              state, headers);
        }
      }
    }

    @Override
    public void writeFrame(WritableBuffer frame, boolean flush, int numMessages) {
      int bytes = frame.readableBytes();
      if (bytes > 0) {
        onSendingBytes(bytes);
      }
      synchronized (state.lock) {
        if (state.cancelled) {
          frame.release();
          return;
        }
        state.outbound.data(frame, false);
        transport.dataBytesSent.add(bytes);
        transportTracer.reportMessageSent(numMessages);
      }
    }

    @Override
    public void writeTrailers(Metadata trailers, boolean headersSent, Status status) {
      synchronized (state.lock) {
        if (state.cancelled) {
          return;
        }
        state.outbound.afterData(() -> {
          transport.sendMetadataFrame(io.grpcshm.internal.ring.FrameLayout.TYPE_TRAILERS,
              state, trailers);
          transport.removeStream(state);
          state.complete();
        });
      }
    }

    @Override
    public void cancel(Status status) {
      // The application (or its deadline) cancelled: like an HTTP/2 RST_STREAM(CANCEL), the client
      // sees CANCELLED and maps it to its own view (e.g. DEADLINE_EXCEEDED past its deadline).
      synchronized (state.lock) {
        state.cancel(status, Status.CANCELLED.withDescription(
            "server cancelled the call: " + status.getCode()));
      }
    }
  }

  /**
   * Per-stream transport state; all methods run under its {@link #lock}. A lock per stream, not
   * the transport's: with one lock, every call in flight on a connection queued behind the
   * others' frames (and behind the loop), and threads parked on it more often than they ran.
   */
  final class TransportState extends AbstractServerStream.TransportState {
    /** Guards this stream's transport state; taken before the transport lock (see there). */
    final Object lock = new Object();
    final int streamId;
    @GuardedBy("lock") final OutboundFlow outbound;
    @GuardedBy("lock") boolean cancelled;
    /** Forgotten by the transport (finished or cancelled): late frames for it are dropped. */
    @GuardedBy("lock") boolean removed;
    @GuardedBy("lock") private boolean receivedEndOfStream;
    @GuardedBy("lock") private int unacknowledgedBytes;
    private final int inboundWindow;

    TransportState(int streamId, int maxMessageSize, StatsTraceContext statsTraceCtx,
        TransportTracer transportTracer) {
      super(maxMessageSize, statsTraceCtx, transportTracer);
      this.streamId = streamId;
      this.inboundWindow = transport.inboundStreamWindow();
      this.outbound = new OutboundFlow(transport.connection(), streamId,
          transport.connection().peerStreamWindow(), this::onSentBytes);
    }

    /** Whether the gRPC layer took the stream (set its listener). */
    boolean hasListener() {
      return listener() != null;
    }

    @GuardedBy("lock")
    void dataReceived(ReadableBuffer data, boolean endOfStream) {
      if (removed) {
        data.close(); // finished or cancelled while this frame was on its way: nobody reads it
        return;
      }
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
    @GuardedBy("lock")
    void cancel(Status status, Status toClient) {
      if (cancelled || removed) {
        return; // removed: finished normally while a cancellation was on its way
      }
      cancelled = true;
      outbound.cancel();
      if (toClient != null) {
        transport.sendRst(streamId, toClient);
      }
      transport.removeStream(this);
      transportReportStatus(status);
    }

    @Override
    @GuardedBy("lock")
    public void bytesRead(int processedBytes) {
      if (cancelled) {
        return;
      }
      unacknowledgedBytes += processedBytes;
      if (unacknowledgedBytes >= inboundWindow / 2) {
        transport.sendWindowUpdate(streamId, unacknowledgedBytes);
        unacknowledgedBytes = 0;
      }
    }

    @Override
    @GuardedBy("lock")
    public void deframeFailed(Throwable cause) {
      // A bad inbound message (too large, undecompressable): the client learns the real status.
      Status status = Status.fromThrowable(cause);
      cancel(status, status);
    }

    @Override
    public void runOnTransportThread(Runnable r) {
      synchronized (lock) {
        r.run();
      }
    }
  }
}
