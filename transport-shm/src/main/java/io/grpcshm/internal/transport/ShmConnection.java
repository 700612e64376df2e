package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.frame.FrameCodec;
import io.grpc.CallOptions;
import io.grpc.Status;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.WritableBuffer;
import io.grpc.internal.WritableBufferAllocator;
import io.grpcshm.DataMovement;
import io.grpcshm.IdleStrategy;
import io.grpcshm.internal.handshake.HandshakeException;
import io.grpcshm.internal.loop.Workers;
import io.grpcshm.internal.handshake.HandshakeMessage;
import io.grpcshm.internal.handshake.RegionLayout;
import io.grpcshm.internal.loop.EventLoop;
import io.grpcshm.internal.loop.EventLoops;
import io.grpcshm.internal.movement.BulkSession;
import io.grpcshm.internal.movement.MoveContext;
import io.grpcshm.internal.nativeio.Epoll;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.SharedMapping;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.frame.MailboxLayout;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingCorruptedException;
import io.grpcshm.internal.ring.RingProducer;
import java.io.IOException;
import java.util.Set;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One shared-memory connection, the same on both sides: the rendezvous socket (kept open as the
 * liveness, control and wake-up channel), the inbound ring it reads, and its lifecycle. It is
 * made of three parts: this class is the reader (an {@link EventLoop.Member}: an event loop
 * shared with other connections polls the ring and the socket; no thread is its own),
 * {@link FrameSender} writes the outbound ring, and {@link PayloadMemory} owns the payload pools
 * and segments of both directions.
 *
 * <p>It moves frames and payload extents; stream semantics live in the client and server
 * transports, which receive frames through {@link Handler}.
 *
 * <p>Lock order: transport lock, then the sender's lock, then the memory's segment lock (a
 * leaf). Sending never blocks and nothing waits for the peer.
 */
final class ShmConnection
    implements EventLoop.Member, EventLoop.HoldOwner, StreamSerializer.FailureHandler {
  private static final Logger log = Logger.getLogger(ShmConnection.class.getName());
  /** When a loop failure was last logged with its stack trace (see {@link #failed}). */
  private static final AtomicLong LAST_FAILURE_TRACE =
      new AtomicLong(System.nanoTime() - TimeUnit.MINUTES.toNanos(1));
  private static final long FAILURE_TRACE_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);
  /** Limits a peer runs into: one line per kind and 10 s, however hard it tries. */
  private static final RateLimitedLog LIMIT_LOG =
      new RateLimitedLog(log, TimeUnit.SECONDS.toNanos(10));
  private static final AtomicInteger IDS = new AtomicInteger();
  /** Records handled per poll before the loop turns to its other connections. */
  private static final int POLL_BATCH = 64;
  /**
   * Initial record-body scratch (headers and control frames; message bytes do not pass through
   * it); grows to the largest body seen, so an idle connection keeps only this.
   */
  private static final int INITIAL_SCRATCH_BYTES = 512;

  static {
    UnixSeqpacketSocket.wakeMessage(HandshakeMessage.wakeBytes());
  }

  /** Receives what the peer sends. Called on the event loop, one frame at a time. */
  public interface Handler {
    /**
     * A control or headers frame. {@code body} is a little-endian view of a private copy, valid
     * only during the call. Throw {@link ProtocolException} for a malformed frame.
     */
    void onFrame(int type, int flags, int streamId, ByteBuffer body);

    /** Payload for a stream; the handler owns {@code data} and must close it. */
    void onData(int streamId, boolean endOfStream, ReadableBuffer data, int wireBytes);

    /** The connection is gone; called once, from whichever thread closed it. */
    void onClosed(Status status);

    /**
     * The call executor refused work for stream {@code streamId} that the event loop held until
     * the end of its batch ({@link EventLoop#holdExecution}): fail that stream as a refusal at
     * once would have. Called on the loop.
     */
    void onHeldExecutionRejected(int streamId, RuntimeException refusal);
  }

  /** Connection lifecycle; transitions are checked. */
  enum State {
    OPEN,
    CLOSED,
    TERMINATED;
  }

  private final int id = IDS.incrementAndGet();
  private final String name;
  private final UnixSeqpacketSocket socket;
  private final RingConsumer rx;
  private final FrameSender sender;
  private final PayloadMemory memory;
  private final IdleStrategy idle;
  private final int peerStreamWindow;
  /** Client with reply mailboxes on (PROTOCOL.md §7.5): our pages lent to the server; else null. */
  private final ReplyMailboxes replyMailboxes;

  private final AtomicReference<State> state = new AtomicReference<>(State.OPEN);
  /** Set when the peer's socket closed; the loop drains the ring, then closes. */
  private volatile Status peerClosed;
  private volatile Status closeStatus;
  private volatile Handler handler;

  /** The loop serving us; null before {@link #start} and after it let go of us. */
  private volatile EventLoops.Registration loop;
  /**
   * 1 while the socket closes and the sender drains (after the loop let go), 2 once done: only
   * then may the memory go, once its leases have ended too.
   */
  private final AtomicInteger socketReleased = new AtomicInteger();
  /** Connections an event loop serves in this process (their ticks trim {@link InlineBuffers}). */
  private static final AtomicInteger SERVED = new AtomicInteger();
  private volatile boolean resourcesReleased;

  /** Seconds after which an idle connection trims its memory (0: never). */
  private final long trimAfterTicks;
  // Loop thread only: idle detection for trimming.
  private long lastRxPosition = -1;
  private long lastTxPosition = -1;
  private long idleTicks;
  private boolean trimmed;

  /** Loop thread: the stream of the record being handled (0: none), for held hand-offs. */
  private int recordStreamId;
  /** Loop thread, server: the reply mailbox page the REQUEST_HEADERS being handled names. */
  private int recordMailboxPage = -1;
  /** Caller threads, client: a reply mailbox's records and one record's body, copied out. */
  private static final ThreadLocal<MailboxScratch> MAILBOX_SCRATCH =
      ThreadLocal.withInitial(MailboxScratch::new);
  /** Loop-thread scratch for record bodies (a private copy: each field is read once). */
  private byte[] scratch = new byte[INITIAL_SCRATCH_BYTES];
  /** Little-endian view of {@link #scratch}, reset for each record. */
  private ByteBuffer scratchView = ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN);
  /** Bound once: a method reference made per poll would allocate on every spin of the loop. */
  private final RingConsumer.RecordHandler recordHandler = this::onRecord;

  /**
   * Wraps an established connection. {@code regionMapping} is the mapped region, which this
   * connection closes at teardown.
   */
  public ShmConnection(
      String name,
      UnixSeqpacketSocket socket,
      SharedMapping regionMapping,
      RegionLayout layout,
      boolean isServer,
      ShmTransportConfig config,
      int peerStreamWindow,
      boolean replyMailbox) {
    this.name = name + "#" + id;
    this.socket = socket;
    MemorySegment region = regionMapping.memory();
    MemorySegment c2sPool = region.asSlice(layout.clientToServerPoolOffset(), layout.poolSize());
    MemorySegment s2cPool = region.asSlice(layout.serverToClientPoolOffset(), layout.poolSize());
    // Our producer ring is client->server on the client, server->client on the server.
    RingProducer tx = new RingProducer(layout.ringHeader(region, !isServer),
        layout.ringData(region, !isServer), layout.ringCapacity());
    this.rx = new RingConsumer(layout.ringHeader(region, isServer),
        layout.ringData(region, isServer), layout.ringCapacity());
    this.sender = new FrameSender(this, tx, socket::sendWake,
        replyMailbox && isServer ? c2sPool : null);
    // Inline payloads up to half a record, so one never crowds a ring's worth of headers out.
    int inlineThreshold = Math.min(config.inlineThreshold(), tx.maxRecordLength() / 2);
    UnixSeqpacketSocket.PeerCredentials peer = peerOf(socket);
    this.memory = new PayloadMemory(this, this.name, socket, peer == null ? -1 : peer.uid(),
        regionMapping, isServer ? s2cPool : c2sPool, isServer ? c2sPool : s2cPool,
        inlineThreshold, config.maxSegmentBytes());
    this.replyMailboxes = replyMailbox && !isServer
        ? new ReplyMailboxes(this, memory, memory.txPoolMemory()) : null;
    this.idle = idleStrategyFor(config.idleStrategy(), peer, ProcessHandle.current().pid());
    this.peerStreamWindow = peerStreamWindow;
    this.trimAfterTicks = config.idleTrimMillis() == 0 ? 0
        : Math.max(1, (config.idleTrimMillis() + 999) / 1000);
  }

  /**
   * The configured strategy, without its yield phase when the peer is this process
   * ({@link IdleStrategy#withoutYield}: one loop then serves both ends).
   */
  static IdleStrategy idleStrategyFor(IdleStrategy configured,
      UnixSeqpacketSocket.PeerCredentials peer, long ownPid) {
    return peer != null && peer.pid() == ownPid ? IdleStrategy.withoutYield(configured)
        : configured;
  }

  private static UnixSeqpacketSocket.PeerCredentials peerOf(UnixSeqpacketSocket socket) {
    try {
      return socket.peerCredentials();
    } catch (IOException e) {
      return null; // closed already: it will map nothing
    }
  }

  /**
   * Closes a connection that will never serve (its transport or server shut down while the
   * handshake ran) and releases its socket and memory.
   */
  public void abandon(Status status) {
    close(status);
    start(new Handler() {
      @Override
      public void onFrame(int type, int flags, int streamId, ByteBuffer body) {}

      @Override
      public void onData(int streamId, boolean endOfStream, ReadableBuffer data, int wireBytes) {
        data.close();
      }

      @Override
      public void onClosed(Status closed) {}

      @Override
      public void onHeldExecutionRejected(int streamId, RuntimeException refusal) {}
    });
  }

  /**
   * Joins an event loop; frames flow to {@code handler} from now on. If the connection was
   * closed before it started, the handler hears about it at once.
   */
  public void start(Handler handler) {
    this.handler = handler;
    synchronized (this) {
      if (state.get() == State.OPEN) {
        loop = EventLoops.register(this, socket.fd(), idle);
        SERVED.incrementAndGet();
        return;
      }
    }
    handler.onClosed(closeStatus);
    releaseSocketAndMaybeMemory();
  }

  public String name() {
    return name;
  }

  public int peerStreamWindow() {
    return peerStreamWindow;
  }

  public boolean isOpen() {
    return state.get() == State.OPEN;
  }

  /** Resets a stream (RST_STREAM with {@code status}). */
  void sendRst(int streamId, Status status) {
    byte[] body = FrameCodec.encodeStatus(status);
    send(FrameLayout.TYPE_RST_STREAM, 0, streamId, body, 0, body.length);
  }

  /**
   * Counts {@code processed} inbound bytes of a stream against its window and returns the new
   * unacknowledged count: once half the window is consumed, a WINDOW_UPDATE gives it back.
   */
  int acknowledgeInbound(int streamId, int unacknowledged, int processed, int window) {
    int pending = unacknowledged + processed;
    if (pending < window / 2) {
      return pending;
    }
    ByteBuffer body = FrameCodec.scratchBody(FrameLayout.WINDOW_UPDATE_BODY_LENGTH).putInt(pending);
    send(FrameLayout.TYPE_WINDOW_UPDATE, 0, streamId, body.array(), 0, body.position());
    return 0;
  }

  /** Sends a PING carrying {@code payload}. */
  void sendPing(long payload) {
    sendPingFrame(FrameLayout.TYPE_PING, payload);
  }

  /** Answers a PING (its body is the payload to echo). */
  void answerPing(ByteBuffer pingBody) {
    sendPingFrame(FrameLayout.TYPE_PING_ACK, pingBody.getLong());
  }

  private void sendPingFrame(int type, long payload) {
    ByteBuffer body = FrameCodec.scratchBody(FrameLayout.PING_BODY_LENGTH).putLong(payload);
    send(type, 0, 0, body.array(), 0, body.position());
  }

  /** A WINDOW_UPDATE's delta; a delta that is not positive breaks the protocol. */
  static int windowDelta(ByteBuffer body) {
    int delta = body.getInt();
    if (delta <= 0) {
      throw new ProtocolException("WINDOW_UPDATE with delta " + delta);
    }
    return delta;
  }

  /** Largest DATA_INLINE payload per record. */
  int maxInlinePayload() {
    return sender.maxInlinePayload();
  }

  // ------------------------------------------------------------------------------------------
  // Reply mailboxes (PROTOCOL.md §7.5)

  /** Client: whether the server offered reply mailboxes on this connection. */
  boolean usesReplyMailboxes() {
    return replyMailboxes != null;
  }

  /** Client: a mailbox for one blocking unary call's answer, or null (the ring it is). */
  ReplyMailbox openReplyMailbox() {
    return replyMailboxes == null ? null : replyMailboxes.open();
  }

  /** Client: the call is done with its mailbox; the page is reused once the server is too. */
  void finishReplyMailbox(ReplyMailbox mailbox) {
    replyMailboxes.finish(mailbox);
  }

  /** A lease that {@link ReplyMailboxes} took ended. */
  void mailboxLeaseEnded() {
    if (memory.leaseEnded() && state.get() != State.OPEN) {
      maybeReleaseMemory();
    }
  }

  /** Sends REQUEST_HEADERS naming reply mailbox {@code page} (flag and reserved field). */
  boolean sendRequestHeaders(int streamId, byte[] body, int length, ReplyMailbox mailbox) {
    if (mailbox == null) {
      return send(FrameLayout.TYPE_REQUEST_HEADERS, 0, streamId, body, 0, length);
    }
    return sender.send(FrameLayout.TYPE_REQUEST_HEADERS, MailboxLayout.FLAG_REPLY_MAILBOX,
        mailbox.pageIndex(), streamId, body, 0, length, null, 0, 0);
  }

  /**
   * Client, on the waiting caller's thread: hands a filled mailbox's records to the handler, as
   * the loop hands a ring's. The records are copied out first (read once); each must be one of a
   * unary answer's frames, for {@code streamId}, and the last must end the stream: anything else
   * breaks the protocol and closes the connection.
   */
  void deliverReplyMailbox(ReplyMailbox mailbox, int streamId) {
    MailboxScratch scratch = MAILBOX_SCRATCH.get();
    try {
      int total = mailbox.copyRecords(scratch.records);
      MemorySegment records = scratch.recordsView;
      int at = 0;
      boolean ended = false;
      while (at < total) {
        if (ended) {
          throw new ProtocolException("reply mailbox holds records after the stream's end");
        }
        if (total - at < FrameLayout.HEADER_LENGTH) {
          throw new ProtocolException("reply mailbox record header truncated");
        }
        int length = records.get(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.LENGTH_OFFSET);
        if (length < FrameLayout.HEADER_LENGTH || length > total - at) {
          throw new ProtocolException("reply mailbox record length " + length + " at " + at
              + " of " + total);
        }
        int type = scratch.records[at + FrameLayout.TYPE_OFFSET] & 0xff;
        int flags = scratch.records[at + FrameLayout.FLAGS_OFFSET] & 0xff;
        int recordStream = records.get(ValueLayout.JAVA_INT_UNALIGNED,
            at + FrameLayout.STREAM_ID_OFFSET);
        if (recordStream != streamId) {
          throw new ProtocolException("reply mailbox of stream " + streamId + " holds a record of "
              + "stream " + recordStream);
        }
        int bodyLength = length - FrameLayout.HEADER_LENGTH;
        int bodyAt = at + FrameLayout.HEADER_LENGTH;
        switch (type) {
          case FrameLayout.TYPE_DATA_INLINE -> {
            InlineBuffers.Payload payload = InlineBuffers.obtain(bodyLength);
            System.arraycopy(scratch.records, bodyAt, payload.array(), 0, bodyLength);
            deliver(streamId, flags, payload, bodyLength);
          }
          case FrameLayout.TYPE_RESPONSE_HEADERS, FrameLayout.TYPE_TRAILERS,
              FrameLayout.TYPE_RST_STREAM -> {
            System.arraycopy(scratch.records, bodyAt, scratch.body, 0, bodyLength);
            ended = type == FrameLayout.TYPE_TRAILERS || type == FrameLayout.TYPE_RST_STREAM;
            try {
              handler.onFrame(type, flags, streamId, scratch.bodyView.clear().limit(bodyLength));
            } catch (java.nio.BufferUnderflowException e) {
              throw new ProtocolException(FrameLayout.typeName(type) + " frame body truncated ("
                  + bodyLength + " bytes)");
            }
          }
          default -> throw new ProtocolException(
              FrameLayout.typeName(type) + " frame in a reply mailbox");
        }
        at += length;
      }
      if (!ended) {
        throw new ProtocolException("reply mailbox answer does not end its stream");
      }
    } catch (RuntimeException e) {
      streamOperationFailed(e);
    }
  }

  /** A caller thread's copies of a mailbox (records read once, then one body at a time). */
  private static final class MailboxScratch {
    final byte[] records = new byte[MailboxLayout.RECORDS_CAPACITY];
    final MemorySegment recordsView = MemorySegment.ofArray(records);
    final byte[] body = new byte[MailboxLayout.RECORDS_CAPACITY];
    final ByteBuffer bodyView = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Server, loop thread: the mailbox page the current REQUEST_HEADERS names (-1: none). */
  int takeReplyMailboxPage() {
    int page = recordMailboxPage;
    recordMailboxPage = -1;
    return page;
  }

  /** Server: the answer of stream {@code streamId} goes to mailbox {@code page} from now on. */
  void openReplyMailbox(int streamId, int page) {
    sender.openMailbox(streamId, page);
  }

  /** Server: stream {@code streamId} ended; its mailbox, if still open, is released. */
  void closeReplyMailbox(int streamId) {
    sender.closeMailbox(streamId);
  }

  /** Server: a page named by a request that never became a stream is released. */
  void releaseReplyMailboxPage(int page) {
    if (page >= 0) {
      sender.releaseMailboxPage(page);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends one frame. Never blocks: if the ring is full (or older frames are queued) the frame is
   * queued in order and the event loop sends it when the peer frees space. Returns false if the
   * connection is closed (the frame is dropped; the caller's stream is being failed anyway).
   */
  boolean send(int type, int flags, int streamId, byte[] body, int offset, int length) {
    return sender.send(type, flags, streamId, body, offset, length);
  }

  /** Sends a payload that grpc's framer wrote (shared-memory extent or heap bytes). */
  boolean sendData(int streamId, boolean endOfStream, WritableBuffer buffer) {
    int flags = endOfStream ? FrameLayout.FLAG_END_STREAM : 0;
    if (buffer == null) {
      return send(FrameLayout.TYPE_DATA_INLINE, flags, streamId, null, 0, 0);
    }
    if (buffer instanceof ShmWritableBuffer shm) {
      int length = shm.readableBytes();
      if (length == 0) {
        shm.release();
        return send(FrameLayout.TYPE_DATA_INLINE, flags, streamId, null, 0, 0);
      }
      shm.handOver(); // waits for data movers still writing into it
      // Encoded after the wait: the scratch body is this thread's until send() copies it.
      ByteBuffer body = FrameCodec.scratchBody(FrameLayout.BLOCK_REFERENCE_BODY_LENGTH);
      body.putInt(shm.segmentId).putInt(length).putLong(shm.offset);
      boolean sent = send(FrameLayout.TYPE_DATA_BLOCK, flags, streamId, body.array(), 0,
          body.position());
      if (!sent) {
        freeTxExtent(shm.segmentId, shm.offset);
      }
      return sent;
    }
    HeapWritableBuffer heap = (HeapWritableBuffer) buffer;
    try {
      int remaining = heap.readableBytes();
      int offset = 0;
      int chunk = maxInlinePayload();
      do {
        int n = Math.min(remaining, chunk);
        boolean last = n == remaining;
        if (!send(FrameLayout.TYPE_DATA_INLINE, last ? flags : 0, streamId, heap.bytes, offset,
            n)) {
          return false;
        }
        offset += n;
        remaining -= n;
      } while (remaining > 0);
      return true;
    } finally {
      heap.release(); // its bytes are in the ring (or dropped): reusable
    }
  }

  /**
   * Sends {@code first} then {@code second} (may be null: a bare end-of-stream) of one stream:
   * as one DATA_INLINE record when both are heap bytes that fit one, else as
   * {@link #sendData} does each.
   */
  boolean sendData(int streamId, boolean endOfStream, WritableBuffer first, WritableBuffer second) {
    if (first instanceof HeapWritableBuffer a
        && (second == null || second instanceof HeapWritableBuffer)) {
      HeapWritableBuffer b = (HeapWritableBuffer) second;
      int aLength = a.readableBytes();
      int bLength = b == null ? 0 : b.readableBytes();
      if (aLength + bLength <= maxInlinePayload()) {
        try {
          return sender.send(FrameLayout.TYPE_DATA_INLINE,
              endOfStream ? FrameLayout.FLAG_END_STREAM : 0, streamId, a.bytes, 0, aLength,
              b == null ? null : b.bytes, 0, bLength);
        } finally {
          a.release();
          if (b != null) {
            b.release();
          }
        }
      }
    }
    if (!sendData(streamId, false, first)) {
      if (second != null) {
        second.release();
      }
      return false;
    }
    return sendData(streamId, endOfStream, second);
  }

  // ------------------------------------------------------------------------------------------
  // Payload memory

  /**
   * grpc's buffer allocator for a client stream of {@code method}, whose data-movement settings
   * (from the call's options) its buffers carry.
   */
  StreamBufferAllocator clientAllocator(String method, DataMovement movement,
      CallOptions options) {
    return new StreamBufferAllocator(memory, method, movement, options);
  }

  /** The same for a server stream, which has no call options. */
  StreamBufferAllocator serverAllocator(String method, DataMovement movement) {
    return new StreamBufferAllocator(memory, method, movement, null);
  }

  /**
   * One stream's allocator, and its {@link MoveContext}, built on first use: only payloads large
   * enough for shared-memory extents need one, and reading call options for every small call
   * showed in profiles. Built here rather than by a separate supplier, so a stream costs one
   * object for both. A race between two writers of one stream builds it twice, harmlessly (the
   * record is immutable).
   *
   * <p>A client stream that holds back its headers (a call with one request message) starts
   * before its message goes into shared memory: from then on the connection's end fails it like
   * any started stream, before its memory is unmapped.
   */
  static final class StreamBufferAllocator implements WritableBufferAllocator,
      Supplier<MoveContext> {
    private final PayloadMemory memory;
    private final String method;
    private final DataMovement movement;
    /** The client call's options; null for a server stream. */
    private final CallOptions options;
    private MoveContext built;
    /** Set once by a client stream after construction; read on the framer's thread. */
    private volatile ShmClientStream startsBeforeSharedMemory;

    private StreamBufferAllocator(PayloadMemory memory, String method, DataMovement movement,
        CallOptions options) {
      this.memory = memory;
      this.method = method;
      this.movement = movement;
      this.options = options;
    }

    void startBeforeSharedMemory(ShmClientStream stream) {
      startsBeforeSharedMemory = stream;
    }

    /** The stream's data-movement context. */
    @Override
    public MoveContext get() {
      MoveContext c = built;
      if (c == null) {
        c = options == null
            ? MoveContext.server(method, movement)
            : MoveContext.client(method, movement, options);
        built = c;
      }
      return c;
    }

    @Override
    public WritableBuffer allocate(int capacityHint) {
      ShmClientStream stream = startsBeforeSharedMemory;
      if (stream != null && memory.wouldUseSharedMemory(capacityHint)) {
        startsBeforeSharedMemory = null;
        stream.startHeldBack();
      }
      return memory.allocate(capacityHint, this);
    }
  }

  /** Returns an extent we allocated (never sent, or released by the peer). */
  void freeTxExtent(int segmentId, long offset) {
    memory.freeTxExtent(segmentId, offset);
  }

  /** Registers a mover's copy into our memory; false once teardown began (do not start it). */
  boolean moveStarted(BulkSession.Move move) {
    return memory.moveStarted(move);
  }

  void moveEnded(BulkSession.Move move) {
    memory.moveEnded(move);
  }

  /** Called when the last buffer reading a received extent closes. */
  void releaseLease(int segmentId, long offset) {
    if (state.get() == State.OPEN) {
      ByteBuffer body = FrameCodec.scratchBody(FrameLayout.BLOCK_REFERENCE_BODY_LENGTH);
      body.putInt(segmentId).putInt(0).putLong(offset);
      send(FrameLayout.TYPE_RELEASE, 0, 0, body.array(), 0, body.position());
    }
    if (memory.leaseEnded() && state.get() != State.OPEN) {
      maybeReleaseMemory();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  void pokeLoop() {
    EventLoops.Registration r = loop;
    if (r != null) {
      r.poke();
    }
  }

  // ------------------------------------------------------------------------------------------
  // EventLoop.Member: everything below runs on the loop thread

  @Override
  public int poll() {
    if (state.get() != State.OPEN) {
      return 0;
    }
    Status gone = peerClosed;
    if (gone != null) {
      drainAfterPeerClosed();
      close(gone);
      return 1;
    }
    int work;
    try {
      work = rx.poll(recordHandler, POLL_BATCH);
      // Space frees only when we consume: a producer waiting for it needs a wake only then.
      if (work > 0 && rx.takeProducerWaiting()) {
        sender.wakePeer();
      }
      work += sender.drainFromLoop();
    } catch (RingCorruptedException | ProtocolException e) {
      close(Status.INTERNAL.withDescription(
          "shared-memory peer violated the protocol: " + e.getMessage()));
      return 1;
    }
    return work;
  }

  @Override
  public boolean park() {
    if (state.get() != State.OPEN) {
      return true; // closing: the loop lets go of us soon
    }
    rx.prepareToSleep();
    boolean pendingWork = sender.queuedFrameFits(true);
    if (rx.hasRecords() || pendingWork || peerClosed != null) {
      rx.cancelSleep();
      return false;
    }
    return true;
  }

  @Override
  public void unpark() {
    if (state.get() == State.OPEN) {
      rx.cancelSleep();
    }
  }

  @Override
  public int currentCall() {
    return recordStreamId;
  }

  @Override
  public void heldExecutionRejected(int call, RuntimeException refusal) {
    Handler h = handler;
    if (h != null) {
      h.onHeldExecutionRejected(call, refusal);
    }
  }

  @Override
  public boolean tick(long nowNanos, boolean parked) {
    if (state.get() != State.OPEN) {
      return false;
    }
    InlineBuffers.trimIfDue(nowNanos); // process-wide, at most once per period
    sender.trimQueueIfUnused(); // a backlog's grown queue array, once a second passed without one
    trimWhenIdle();
    if (!parked) {
      return false;
    }
    boolean work = rx.hasRecords() || peerClosed != null || sender.queuedFrameFits(false);
    if (work) {
      // Usually a WAKE still on its way (the peer commits, then wakes); otherwise a peer that
      // does not send WAKE: polled once a second regardless, slow but never stuck.
      log.log(Level.FINE, "{0}: parked with work at the periodic check", name);
    }
    return work;
  }

  /**
   * Counts seconds (ticks) without traffic either way; once the configured delay has passed,
   * gives back the pool beyond its first MiB and every idle extra segment (MADV_REMOVE frees the
   * memory file's pages, so the peer's resident memory drops too). Once per idle period.
   */
  private void trimWhenIdle() {
    long rxAt = rx.position();
    long txAt = sender.position();
    if (rxAt != lastRxPosition || txAt != lastTxPosition) {
      lastRxPosition = rxAt;
      lastTxPosition = txAt;
      idleTicks = 0;
      trimmed = false;
      return;
    }
    idleTicks++;
    if (trimmed || trimAfterTicks <= 0 || idleTicks < trimAfterTicks) {
      return;
    }
    trimmed = true;
    if (replyMailboxes != null) {
      replyMailboxes.sweep(); // pages the server released since: the pool may be empty now
      replyMailboxes.returnSpares();
    }
    long freed = memory.trim();
    if (freed > 0) {
      log.log(Level.FINE, "{0}: idle for {1} s, gave back {2} bytes of shared memory",
          new Object[] {name, idleTicks, freed});
    }
  }

  /**
   * A stream operation that ran on another thread than the one that brought it failed: a frame
   * that broke the protocol closes the connection as the loop would have; anything else is a
   * bug, handled like a loop failure.
   */
  @Override
  public void streamOperationFailed(RuntimeException e) {
    if (e instanceof ProtocolException) {
      close(Status.INTERNAL.withDescription(
          "shared-memory peer violated the protocol: " + e.getMessage()));
    } else {
      failed(e);
    }
  }

  @Override
  public void failed(Throwable t) {
    // Always a bug (ours or a handler's): never swallowed, even on a connection already closing,
    // or a call it was handling hangs without a trace. With its stack trace once per interval:
    // if a peer found a way to provoke it, it must not be able to flood the log with it.
    long now = System.nanoTime();
    long last = LAST_FAILURE_TRACE.get();
    if (now - last >= FAILURE_TRACE_INTERVAL_NANOS && LAST_FAILURE_TRACE.compareAndSet(last, now)) {
      log.log(Level.WARNING, name + " (" + state.get() + "): event loop failed on this connection",
          t);
    } else {
      LIMIT_LOG.log(Level.WARNING, "loop-failure",
          () -> name + " (" + state.get() + "): event loop failed on this connection: " + t);
    }
    close(Status.INTERNAL.withDescription("shared-memory event loop failed: " + t).withCause(t));
  }

  @Override
  public void removed() {
    loop = null;
    if (SERVED.decrementAndGet() == 0) {
      // No connection's tick trims the process-wide inline arrays any more: drop the spare ones.
      InlineBuffers.trimAll();
    }
    if (state.get() != State.OPEN) {
      if (memory.hasMovesInFlight()) {
        // Teardown waits for data movers (up to 10 s for a stuck device): not on the loop,
        // which serves other connections.
        Workers.get().execute(this::releaseSocketAndMaybeMemory);
      } else {
        releaseSocketAndMaybeMemory();
      }
    }
  }

  private void onRecord(MemorySegment data, int at, int length) {
    int streamId = data.get(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET);
    recordStreamId = streamId;
    try {
      handleRecord(data, at, length, streamId);
    } finally {
      recordStreamId = 0;
    }
  }

  private void handleRecord(MemorySegment data, int at, int length, int streamId) {
    int type = data.get(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET) & 0xff;
    int flags = data.get(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET) & 0xff;
    int bodyLength = length - FrameLayout.HEADER_LENGTH;
    if (type == FrameLayout.TYPE_PADDING || type > FrameLayout.TYPE_MAX) {
      throw new ProtocolException("unknown frame type " + type);
    }
    if (type == FrameLayout.TYPE_DATA_INLINE) {
      // Copied out of the ring (read once), into an array grpc gives back when it has read it.
      InlineBuffers.Payload payload = InlineBuffers.obtain(bodyLength);
      MemorySegment.copy(data, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH,
          payload.array(), 0, bodyLength);
      deliver(streamId, flags, payload, bodyLength);
      return;
    }
    if (scratch.length < bodyLength) {
      scratch = new byte[Math.max(bodyLength, scratch.length * 2)];
      scratchView = ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN);
    }
    MemorySegment.copy(data, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH, scratch, 0,
        bodyLength);
    ByteBuffer body = scratchView.clear().limit(bodyLength);
    if (type == FrameLayout.TYPE_REQUEST_HEADERS) {
      recordMailboxPage = mailboxPageOf(data, at, flags);
    }
    try {
      switch (type) {
        case FrameLayout.TYPE_DATA_BLOCK -> onDataBlock(streamId, flags, body);
        case FrameLayout.TYPE_RELEASE -> {
          int segmentId = body.getInt();
          body.getInt(); // reserved
          memory.onRelease(segmentId, body.getLong());
        }
        default -> handler.onFrame(type, flags, streamId, body);
      }
    } catch (java.nio.BufferUnderflowException e) {
      throw new ProtocolException(FrameLayout.typeName(type) + " frame body truncated ("
          + bodyLength + " bytes)");
    }
  }

  /**
   * Server: the reply mailbox page a REQUEST_HEADERS names, checked against the client's pool;
   * -1 when it names none, or when we did not offer mailboxes (the flag is then ignored and the
   * answer takes the ring, which the client always accepts).
   */
  private int mailboxPageOf(MemorySegment data, int at, int flags) {
    if ((flags & MailboxLayout.FLAG_REPLY_MAILBOX) == 0 || !sender.servesMailboxes()) {
      return -1;
    }
    int page = data.get(ValueLayout.JAVA_SHORT_UNALIGNED, at + FrameLayout.RESERVED_OFFSET)
        & 0xffff;
    if (!sender.isMailboxPage(page)) {
      throw new ProtocolException("REQUEST_HEADERS names reply mailbox page " + page
          + " outside the client's pool");
    }
    return page;
  }

  private void onDataBlock(int streamId, int flags, ByteBuffer body) {
    int segmentId = body.getInt();
    long length = body.getInt() & 0xffffffffL;
    long offset = body.getLong();
    ReadableBuffer data = memory.leaseExtent(segmentId, length, offset);
    deliver(streamId, flags, data, (int) length);
  }

  /** Hands payload to the handler; if the handler fails, the buffer is still released. */
  private void deliver(int streamId, int flags, ReadableBuffer data, int wireBytes) {
    try {
      handler.onData(streamId, (flags & FrameLayout.FLAG_END_STREAM) != 0, data, wireBytes);
    } catch (RuntimeException e) {
      data.close(); // idempotent if the handler got as far as closing it
      throw e;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Control socket: liveness, segment attachment

  @Override
  public void onSocket(int events) {
    if (state.get() != State.OPEN) {
      return;
    }
    EventLoop.ControlScratch scratch = EventLoop.controlScratch();
    byte[] controlBuffer = scratch.message;
    int[] controlFds = scratch.fds;
    try {
      while (true) {
        int n = socket.tryReceive(controlBuffer, controlFds);
        if (n == UnixSeqpacketSocket.NOTHING) {
          break;
        }
        if (n < 0) {
          peerClosed(Status.UNAVAILABLE.withDescription("shared-memory peer closed the connection"));
          return;
        }
        try {
          HandshakeMessage message = HandshakeMessage.decode(controlBuffer, n);
          switch (message) {
            case HandshakeMessage.Wake w -> {
              // The loop makes us hot after this returns; nothing else to do.
            }
            case HandshakeMessage.SegmentAttach attach ->
                memory.onSegmentAttach(attach, controlFds[0]);
            case HandshakeMessage.SegmentAck ack -> memory.onSegmentAck(ack);
            case HandshakeMessage.Goodbye g -> {
              peerClosed(Status.UNAVAILABLE.withDescription("shared-memory peer said goodbye"));
              return;
            }
            default -> throw new HandshakeException(
                "unexpected control message " + message.getClass().getSimpleName());
          }
        } finally {
          for (int i = 0; i < controlFds.length; i++) {
            if (controlFds[i] >= 0) {
              Linux.close(controlFds[i]);
              controlFds[i] = -1;
            }
          }
        }
      }
      if ((events & (Epoll.HUP | Epoll.RDHUP | Epoll.ERR)) != 0) {
        // Hung up with nothing (more) to read: the peer is gone.
        peerClosed(Status.UNAVAILABLE.withDescription("shared-memory peer closed the connection"));
      }
    } catch (IOException | RuntimeException e) {
      close(Status.INTERNAL.withDescription(
          "shared-memory control channel failed: " + e.getMessage()).withCause(e));
    }
  }

  // ------------------------------------------------------------------------------------------
  // Closing

  /**
   * The peer closed its socket (orderly close or death). Frames it published before that (the
   * last trailers, say) are still in the ring: the loop handles them, then closes.
   */
  private void peerClosed(Status status) {
    peerClosed = status; // the loop polls us once more (we are made hot), drains, then closes
  }

  /** Handles what the peer published before it went away, bounded by one ring's worth. */
  private void drainAfterPeerClosed() {
    int budget = rx.capacity() / FrameLayout.HEADER_LENGTH;
    try {
      int n;
      while (budget > 0 && state.get() == State.OPEN && (n = rx.poll(this::onRecord, POLL_BATCH)) > 0) {
        budget -= n;
      }
    } catch (RingCorruptedException | ProtocolException e) {
      close(Status.INTERNAL.withDescription(
          "shared-memory peer violated the protocol: " + e.getMessage()));
    }
  }

  /** Closes from a context that may hold locks: the handler is notified from the loop. */
  void closeLater(Status status) {
    EventLoops.Registration r = loop;
    if (r != null) {
      r.loop().execute(() -> close(status));
    } else {
      Thread t = new Thread(() -> close(status), "grpc-shm-close-" + name);
      t.setDaemon(true);
      t.start();
    }
  }

  /**
   * Closes the connection: wakes both threads, fails nothing itself but tells the handler once.
   * Memory stays mapped until every received buffer the application still holds is closed.
   */
  public void close(Status status) {
    if (!state.compareAndSet(State.OPEN, State.CLOSED)) {
      return;
    }
    closeStatus = status;
    log.log(Level.FINE, "{0}: closing: {1}", new Object[] {name, status});
    if (status.getCode() == Status.Code.INTERNAL) {
      // A broken peer (or a bug): worth a warning, but a peer must not be able to flood the log.
      LIMIT_LOG.log(Level.WARNING, "closing-internal", () -> name + ": closing: " + status);
    }
    socket.shutdown();
    Handler h = handler;
    if (h != null) {
      h.onClosed(status);
    }
    EventLoops.Registration r;
    synchronized (this) {
      r = loop;
    }
    if (r != null) {
      r.close(); // the loop lets go of us, then we release the socket and memory (removed())
    } else {
      releaseSocketAndMaybeMemory();
    }
  }

  public Status closeStatus() {
    return closeStatus;
  }

  private void releaseSocketAndMaybeMemory() {
    if (socketReleased.compareAndSet(0, 1)) {
      socket.close();
      sender.clear(); // waits for a sender still writing the ring or a mailbox page
      socketReleased.set(2);
      maybeReleaseMemory();
    }
  }

  private synchronized void maybeReleaseMemory() {
    if (resourcesReleased || socketReleased.get() != 2 || memory.hasLeases()) {
      return;
    }
    resourcesReleased = true;
    state.set(State.TERMINATED);
    memory.release();
  }

  /** True once threads have exited and all memory is unmapped (for tests). */
  public boolean isTerminated() {
    return resourcesReleased;
  }

  @Override
  public String toString() {
    return "ShmConnection{" + name + ", " + state.get() + "}";
  }
}
