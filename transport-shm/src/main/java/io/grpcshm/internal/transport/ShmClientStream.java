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

/** The client half of a call over shared memory. State lives in {@link TransportState}. */
final class ShmClientStream extends AbstractClientStream {
  private final ShmClientTransport transport;
  private final MethodDescriptor<?, ?> method;
  private final TransportState state;
  private final Sink sink = new Sink();
  private final Attributes attributes;
  private String authority;
  /**
   * The thread of a blocking unary stub call, which may wait for the answer in a reply mailbox
   * when it half-closes (PROTOCOL.md §7.5); null for every other call.
   */
  private final Thread blockingCaller;

  /** {@code allocator}: the connection's, for this stream's call (its data-movement settings). */
  ShmClientStream(
      ShmConnection.StreamBufferAllocator allocator,
      ShmClientTransport transport,
      MethodDescriptor<?, ?> method,
      Metadata headers,
      CallOptions callOptions,
      StatsTraceContext statsTraceCtx,
      StreamTracers tracers,
      int maxInboundMessageSize,
      String authority,
      Attributes attributes,
      Thread blockingCaller) {
    super(allocator, statsTraceCtx, tracers.newStream(), headers, callOptions, false);
    this.blockingCaller = blockingCaller;
    if (method.getType().clientSendsOneMessage()) {
      allocator.startBeforeSharedMemory(this);
    }
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

  /**
   * Called on the framer's thread before the request message goes into shared memory: sends
   * the held-back headers now (a large request gains nothing from waiting).
   */
  void startHeldBack() {
    state.serializer.run(state, null, TransportState::startIfHeldBack);
  }

  String methodName() {
    return method.getFullMethodName();
  }

  private final class Sink implements AbstractClientStream.Sink {
    @Override
    public void writeHeaders(Metadata metadata, byte[] payload) {
      // payload is only for GET requests, which this transport never asks for.
      if (method.getType().clientSendsOneMessage()) {
        // Like grpc's Netty transport, the headers of a call with one request message wait for
        // it: the server then finds the whole request in one batch of records.
        state.serializer.run(state, metadata, TransportState::deferStart);
        return;
      }
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
        // A blocking call's caller, sending its request whole on its own thread: the headers go
        // out now, naming a mailbox for the answer, and this thread waits there right after.
        boolean waitsHere = endOfStream && blockingCaller == Thread.currentThread();
        boolean written = false;
        try {
          state.replyMailboxWanted = waitsHere;
          state.writeFrame(frame, endOfStream, flush, bytes, numMessages);
          written = true;
        } finally {
          state.replyMailboxWanted = false;
          state.serializer.exit();
          ReplyMailbox named = waitsHere && !written ? state.replyMailbox : null;
          if (named != null) {
            // Something after REQUEST_HEADERS threw (a stream tracer, say): nobody will wait.
            named.abandon();
            state.replyMailbox = null;
            transport.connection().finishReplyMailbox(named);
          }
        }
        ReplyMailbox mailbox = waitsHere ? state.replyMailbox : null;
        if (mailbox != null) {
          awaitReply(mailbox);
        }
      } else {
        state.serializer.defer(
            () -> state.writeFrame(frame, endOfStream, flush, bytes, numMessages));
      }
    }

    @Override
    public void cancel(Status status) {
      state.serializer.execute(() -> state.cancelFromApplication(status));
    }
  }

  /**
   * Waits (on the caller's thread, holding nothing) until the server answered into the mailbox
   * or the call left the wait, and delivers an answer found there as the loop would have; the
   * caller then finds the call's callbacks queued in its executor.
   */
  private void awaitReply(ReplyMailbox mailbox) {
    ShmConnection connection = transport.connection();
    try {
      if (mailbox.await() == ReplyMailbox.Outcome.FILLED) {
        connection.deliverReplyMailbox(mailbox, state.id());
      }
      // Otherwise the ring brings the answer (grpc's wait takes over: it also sees an interrupt
      // the caller kept), or the call has ended.
    } catch (RuntimeException e) {
      mailbox.abandon();
      connection.streamOperationFailed(e); // a broken state word: the server broke the protocol
    } finally {
      state.replyMailbox = null;
      connection.finishReplyMailbox(mailbox);
    }
  }

  /**
   * Per-stream transport state. Every method runs as an operation of {@link #serializer}, grpc's
   * transport thread for this stream; none is called with the transport's lock held.
   */
  final class TransportState extends AbstractClientStream.TransportState
      implements OutboundFlow.SentListener, StreamSerializer.RefusalListener {
    final StreamSerializer serializer;
    /** Written once, under the serializer and the transport lock; read under either. */
    private volatile int streamId = -1;
    @GuardedBy("serializer") private OutboundFlow outbound;
    @GuardedBy("serializer") private WritableBuffer earlyFrame;
    @GuardedBy("serializer") private boolean earlyEndOfStream;
    @GuardedBy("serializer") private boolean hasEarlyFrame;
    /** Headers of a call with one request message, until its end of stream. */
    @GuardedBy("serializer") private Metadata deferredHeaders;
    /** That message's frames, kept with {@link #deferredHeaders} (at most two). */
    @GuardedBy("serializer") private WritableBuffer heldRequest;
    @GuardedBy("serializer") private WritableBuffer heldRequestTail;
    @GuardedBy("serializer") private boolean cancelSent;
    @GuardedBy("serializer") private boolean closed;
    @GuardedBy("serializer") private int unacknowledgedBytes;
    /**
     * Set by the blocking caller's own half-close while it runs this stream's operations inline:
     * the REQUEST_HEADERS sent meanwhile may name a reply mailbox.
     */
    @GuardedBy("serializer") boolean replyMailboxWanted;
    /** The mailbox the caller waits on, until it is done with it; any thread may abandon it. */
    volatile ReplyMailbox replyMailbox;
    /** Whether it counts for grpc's in-use accounting (idle-mode decisions). */
    @GuardedBy("transport.lock") boolean countedInUse;
    private final int inboundWindow;

    private final StreamTracers tracers;
    private final TransportTracer tracer;
    @GuardedBy("serializer") private boolean tracerGivenBack;

    TransportState(int maxMessageSize, StatsTraceContext statsTraceCtx, StreamTracers tracers,
        TransportTracer transportTracer, CallOptions options) {
      super(maxMessageSize, statsTraceCtx, transportTracer, options);
      this.tracers = tracers;
      this.tracer = transportTracer;
      this.serializer = new StreamSerializer(transport, this);
      this.inboundWindow = transport.inboundStreamWindow();
    }

    /** Whether the REQUEST_HEADERS being sent (in startStream) may name a reply mailbox. */
    @GuardedBy("serializer")
    boolean wantsReplyMailbox() {
      return replyMailboxWanted;
    }

    /** The REQUEST_HEADERS about to go names {@code mailbox}; the caller waits on it. */
    @GuardedBy("serializer")
    void useReplyMailbox(ReplyMailbox mailbox) {
      replyMailbox = mailbox;
    }

    /**
     * Ends a caller's wait in the mailbox, from any thread: the call ended, or a frame for it
     * arrived on the ring (the server answers there after all).
     */
    void abandonReplyMailbox() {
      ReplyMailbox mailbox = replyMailbox;
      if (mailbox != null) {
        mailbox.abandon();
      }
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
          transport.connection().peerStreamWindow(), this);
      onStreamAllocated();
      getTransportTracer().reportLocalStreamStarted();
      if (hasEarlyFrame) {
        hasEarlyFrame = false;
        outbound.data(earlyFrame, earlyEndOfStream);
        earlyFrame = null;
      }
    }

    @GuardedBy("serializer")
    void startIfHeldBack(Object unused) {
      Metadata headers = deferredHeaders;
      if (headers == null || ended()) {
        return;
      }
      deferredHeaders = null;
      transport.startStream(ShmClientStream.this, headers, authority);
      WritableBuffer first = heldRequest;
      WritableBuffer second = heldRequestTail;
      heldRequest = null;
      heldRequestTail = null;
      if (first != null) {
        sendData(first, false, false);
      }
      if (second != null) {
        sendData(second, false, false);
      }
    }

    @GuardedBy("serializer")
    void deferStart(Metadata headers) {
      if (!ended()) {
        deferredHeaders = headers;
      }
    }

    int id() {
      return streamId;
    }

    @GuardedBy("serializer")
    void writeFrame(WritableBuffer frame, boolean endOfStream, boolean flush, int bytes,
        int numMessages) {
      Metadata headers = deferredHeaders;
      if (headers == null || ended()) {
        sendData(frame, endOfStream, flush);
      } else if (!endOfStream && heldRequestTail == null && frame instanceof HeapWritableBuffer
          && frame.readableBytes() <= HeapWritableBuffer.MAX_CACHED_CAPACITY) {
        // The one request message (grpc's framer may give its 5-byte prefix apart, and flushes
        // it): kept with the headers until the end of stream, which follows at once.
        if (heldRequest == null) {
          heldRequest = frame;
        } else {
          heldRequestTail = frame;
        }
      } else {
        deferredHeaders = null;
        transport.startStream(ShmClientStream.this, headers, authority);
        sendHeldRequest(frame, endOfStream, flush);
      }
      transport.dataBytesSent.add(bytes);
      // Per stream, on its serializer: grpc's TransportTracer is not thread-safe. A frame written
      // after the call closed (an application that keeps sending, or a write deferred behind the
      // close) is dropped, and the tracer may already serve another stream: not counted.
      if (!tracerGivenBack) {
        getTransportTracer().reportMessageSent(numMessages);
      }
    }

    /**
     * Sends the kept request frames and then {@code frame}: an empty end of stream travels on the
     * last kept frame, and two frames that fit one record share it.
     */
    @GuardedBy("serializer")
    private void sendHeldRequest(WritableBuffer frame, boolean endOfStream, boolean flush) {
      WritableBuffer first = heldRequest;
      WritableBuffer second = heldRequestTail;
      heldRequest = null;
      heldRequestTail = null;
      if (first == null) {
        sendData(frame, endOfStream, flush);
        return;
      }
      boolean bareEnd = endOfStream && (frame == null || frame.readableBytes() == 0);
      if (bareEnd && frame != null) {
        frame.release();
      }
      WritableBuffer last = second != null ? second : first;
      if (second != null) {
        sendData(first, false, false);
      }
      if (bareEnd) {
        sendData(last, true, true);
      } else {
        sendData(last, false, false);
        sendData(frame, endOfStream, flush);
      }
    }

    @GuardedBy("serializer")
    void sendData(WritableBuffer frame, boolean endOfStream, boolean flush) {
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
      if (endOfStream || flush || frame == null || !outbound.tryHold(frame)) {
        outbound.data(frame, endOfStream);
      }
    }

    @GuardedBy("serializer")
    private void dropUnsent() {
      deferredHeaders = null;
      if (heldRequest != null) {
        heldRequest.release();
        heldRequest = null;
      }
      if (heldRequestTail != null) {
        heldRequestTail.release();
        heldRequestTail = null;
      }
      if (hasEarlyFrame) {
        hasEarlyFrame = false;
        if (earlyFrame != null) {
          earlyFrame.release();
        }
        earlyFrame = null;
      }
    }

    /** The call executor refused this call's callbacks (held by the loop): end the call. */
    @Override
    public void callbacksRefused(java.util.concurrent.RejectedExecutionException refusal) {
      transport.callbacksRefused(this, refusal);
    }

    void executorRefused(Status status) {
      serializer.execute(() -> cancelFromApplication(status));
    }

    @GuardedBy("serializer")
    void cancelFromApplication(Status status) {
      if (cancelSent) {
        return;
      }
      cancelSent = true;
      abandonReplyMailbox();
      dropUnsent();
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
      abandonReplyMailbox();
      if (outbound != null) {
        outbound.cancel();
      }
      inboundTrailersReceived(trailers, status);
    }

    /** The server reset the stream, or the connection failed. */
    @GuardedBy("serializer")
    void fail(Status status, RpcProgress progress) {
      closed = true;
      abandonReplyMailbox();
      dropUnsent();
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
      if (!tracerGivenBack) { // grpc closes a deframer once; a second give-back would share it
        tracerGivenBack = true;
        tracers.streamClosed(tracer);
      }
    }
  }
}
