package io.grpcshm.internal.transport;

import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.frame.FrameCodec;
import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.Status;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.ReadableBuffers;
import io.grpc.internal.WritableBuffer;
import io.grpc.internal.WritableBufferAllocator;
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
import io.grpcshm.internal.nativeio.NativeException;
import io.grpcshm.internal.nativeio.SharedMapping;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.ring.RingConsumer;
import io.grpcshm.internal.ring.RingCorruptedException;
import io.grpcshm.internal.ring.RingProducer;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One shared-memory connection, the same on both sides: the rendezvous socket (kept open as the
 * liveness, control and wake-up channel), the mapped region with the two frame rings and payload
 * pools, and extra payload segments. An {@link EventLoop} shared with other connections reads
 * its ring and its socket ({@link EventLoop.Member}); no thread is its own.
 *
 * <p>It moves frames and payload extents; stream semantics live in the client and server
 * transports, which receive frames through {@link Handler}.
 *
 * <p>Lock order: transport lock, then {@link #producerLock}, then {@link #segmentLock}. Sending
 * never blocks: a frame that does not fit in the ring is queued and drained by the loop once the
 * peer frees space. Nothing waits for the peer: a new payload segment is offered
 * (SEGMENT_ATTACH) and joins the rotation when its SEGMENT_ACK arrives on the loop; payloads go
 * through the pool or inline meanwhile.
 */
public final class ShmConnection implements EventLoop.Member {
  private static final Logger log = Logger.getLogger(ShmConnection.class.getName());
  /** Limits a peer runs into: one line per kind and 10 s, however hard it tries. */
  /** When a loop failure was last logged with its stack trace (see {@link #failed}). */
  private static final AtomicLong LAST_FAILURE_TRACE =
      new AtomicLong(System.nanoTime() - TimeUnit.MINUTES.toNanos(1));
  private static final long FAILURE_TRACE_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);
  private static final RateLimitedLog LIMIT_LOG =
      new RateLimitedLog(log, TimeUnit.SECONDS.toNanos(10));
  private static final AtomicInteger IDS = new AtomicInteger();
  private static final int POLL_BATCH = 64;
  private static final long SEGMENT_GRANULE = 1L << 20;
  private static final int MAX_SEGMENTS = 256;
  /**
   * Control frames (answers the peer provokes: PING_ACK, WINDOW_UPDATE, RELEASE, RST_STREAM,
   * GOAWAY) that may wait for ring space. A peer that keeps provoking them without reading its
   * ring is cut off here instead of growing our heap (HTTP/2 stacks do the same, e.g. Netty's
   * 10,000 outstanding control frames).
   */
  static final int MAX_QUEUED_CONTROL_FRAMES = 10_000;
  private static final long SEGMENT_REOFFER_NANOS = TimeUnit.SECONDS.toNanos(1);
  /** Largest heap buffer handed to the framer when shared memory is exhausted. */
  private static final int MAX_HEAP_CHUNK = 1 << 20;
  /** Longest teardown waits for data movers still writing into our memory. */
  private static final long MOVE_QUIESCE_NANOS = TimeUnit.SECONDS.toNanos(10);

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
  private final SharedMapping regionMapping;
  private final RingProducer tx;
  private final RingConsumer rx;
  private final MemorySegment txPoolMemory;
  private final MemorySegment rxPoolMemory;
  private final BlockPool txPool;
  private final int inlineThreshold;
  private final long maxSegmentBytes;
  private final IdleStrategy idle;
  private final int peerStreamWindow;

  private final AtomicReference<State> state = new AtomicReference<>(State.OPEN);
  /** Set when the peer's socket closed; the loop drains the ring, then closes. */
  private volatile Status peerClosed;
  private volatile Status closeStatus;
  private volatile Handler handler;

  private final Object producerLock = new Object();
  @GuardedBy("producerLock") private final ArrayDeque<byte[]> pending = new ArrayDeque<>();
  private volatile boolean hasPending;

  private final Object segmentLock = new Object();
  @GuardedBy("segmentLock") private final List<TxSegment> txSegments = new ArrayList<>();
  @GuardedBy("segmentLock") private long txSegmentBytes;
  @GuardedBy("segmentLock") private int nextSegmentId = 1;
  private final Map<Integer, RxSegment> rxSegments = new ConcurrentHashMap<>();
  private long rxSegmentBytes; // loop thread only

  private final AtomicInteger outstandingLeases = new AtomicInteger();
  /**
   * Data movers' copies into our payload memory that have not been seen to complete. Their
   * writes go by raw address, so the memory is not unmapped while any is in flight.
   */
  private final Object movesLock = new Object();
  @GuardedBy("movesLock") private final Set<BulkSession.Move> movesInFlight =
      Collections.newSetFromMap(new IdentityHashMap<>());
  /** Set once teardown began: no new move may start into our memory. */
  @GuardedBy("movesLock") private boolean memoryClosing;
  /** The loop serving us; null before {@link #start} and after it let go of us. */
  private volatile EventLoops.Registration loop;
  /** Wakes the peer's loop (a WAKE message), for {@link RingProducer#wakeConsumer}. */
  private final Runnable wakePeer;
  /** 1 once the socket is closed (after the loop let go); memory may still wait for leases. */
  private final AtomicInteger socketReleased = new AtomicInteger();
  private volatile boolean resourcesReleased;

  /** Seconds after which an idle connection trims its memory (0: never). */
  private final long trimAfterTicks;
  // Loop thread only: idle detection for trimming.
  private long lastRxPosition = -1;
  private long lastTxPosition = -1;
  private long idleTicks;
  private boolean trimmed;

  /** Loop-thread scratch for record bodies (a private copy: each field is read once). */
  private byte[] scratch = new byte[4096];
  /** Little-endian view of {@link #scratch}, reset for each record. */
  private ByteBuffer scratchView = ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN);
  /** Bound once: a method reference made per poll would allocate on every spin of the loop. */
  private final RingConsumer.RecordHandler recordHandler = this::onRecord;
  /** Loop-thread scratch for control messages on the socket. */
  private final byte[] controlBuffer = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
  private final int[] controlFds = new int[UnixSeqpacketSocket.MAX_FDS];

  /** The peer's uid (SO_PEERCRED), for the per-uid limits. */
  private final int peerUid;
  /** A SEGMENT_ATTACH awaits its ack: no second offer meanwhile. */
  @GuardedBy("segmentLock") private boolean segmentOffered;
  /** After a refused offer, the next one waits until then. */
  @GuardedBy("segmentLock") private long nextOfferNanos = System.nanoTime();
  /** Queued control frames (see {@link #MAX_QUEUED_CONTROL_FRAMES}). */
  @GuardedBy("producerLock") private int pendingControl;

  private static final class TxSegment {
    final int id;
    final long size;
    final SharedMapping mapping;
    final MemorySegment memory;
    boolean inUse;
    /** The peer mapped it (its SEGMENT_ACK arrived, perhaps after we stopped waiting). */
    boolean confirmed;
    /** The memfd until it has been sent to the peer, then -1. */
    int fdToSend;

    TxSegment(int id, long size, SharedMapping mapping, int fd) {
      this.id = id;
      this.size = size;
      this.mapping = mapping;
      this.memory = mapping.memory();
      this.fdToSend = fd;
    }
  }

  private record RxSegment(SharedMapping mapping, long size) {
    MemorySegment memory() {
      return mapping.memory();
    }
  }

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
      int peerStreamWindow) {
    this.name = name + "#" + id;
    this.peerUid = peerUidOf(socket);
    this.socket = socket;
    this.wakePeer = socket::sendWake;
    this.regionMapping = regionMapping;
    MemorySegment region = regionMapping.memory();
    MemorySegment c2s = region.asSlice(layout.clientToServerRingOffset(), layout.ringLength());
    MemorySegment s2c = region.asSlice(layout.serverToClientRingOffset(), layout.ringLength());
    MemorySegment c2sPool = region.asSlice(layout.clientToServerPoolOffset(), layout.poolSize());
    MemorySegment s2cPool = region.asSlice(layout.serverToClientPoolOffset(), layout.poolSize());
    this.tx = new RingProducer(isServer ? s2c : c2s, layout.ringCapacity());
    this.rx = new RingConsumer(isServer ? c2s : s2c, layout.ringCapacity());
    this.txPoolMemory = isServer ? s2cPool : c2sPool;
    this.rxPoolMemory = isServer ? c2sPool : s2cPool;
    this.txPool = new BlockPool(layout.poolSize());
    this.inlineThreshold = Math.min(config.inlineThreshold(), tx.maxRecordLength() / 2);
    this.maxSegmentBytes = config.maxSegmentBytes();
    this.idle = config.idleStrategy();
    this.peerStreamWindow = peerStreamWindow;
    this.trimAfterTicks = config.idleTrimMillis() == 0 ? 0
        : Math.max(1, (config.idleTrimMillis() + 999) / 1000);
  }

  /**
   * Joins an event loop; frames flow to {@code handler} from now on. If the connection was
   * closed before it started, the handler hears about it at once.
   */
  private static int peerUidOf(UnixSeqpacketSocket socket) {
    try {
      return socket.peerCredentials().uid();
    } catch (IOException e) {
      return -1; // closed already: it will map nothing
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
    });
  }

  public void start(Handler handler) {
    this.handler = handler;
    synchronized (this) {
      if (state.get() == State.OPEN) {
        loop = EventLoops.register(this, socket.fd(), idle);
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

  /** Largest DATA_INLINE payload per record. */
  int maxInlinePayload() {
    return tx.maxRecordLength() - FrameLayout.HEADER_LENGTH;
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends one frame. Never blocks: if the ring is full (or older frames are queued) the frame is
   * queued in order and the event loop sends it when the peer frees space. Returns false if the
   * connection is closed (the frame is dropped; the caller's stream is being failed anyway).
   */
  boolean send(int type, int flags, int streamId, byte[] body, int offset, int length) {
    int recordLength = FrameLayout.HEADER_LENGTH + length;
    if (recordLength > tx.maxRecordLength()) {
      throw new IllegalArgumentException(
          FrameLayout.typeName(type) + " frame of " + recordLength + " bytes exceeds ring limit "
              + tx.maxRecordLength());
    }
    boolean written = false;
    boolean committed = false;
    synchronized (producerLock) {
      if (state.get() != State.OPEN) {
        return false;
      }
      try {
        if (hasPending) {
          committed = drainPendingLocked() > 0;
        }
        if (!hasPending) {
          long at = tx.claim(recordLength);
          if (at >= 0) {
            encode(tx.data(), at, type, flags, streamId, body, offset, length);
            tx.commit();
            written = true;
          }
        }
        if (!written) {
          if (isControl(type) && ++pendingControl > MAX_QUEUED_CONTROL_FRAMES) {
            if (pendingControl == MAX_QUEUED_CONTROL_FRAMES + 1) {
              closeLater(Status.UNAVAILABLE.withDescription("shared-memory peer stopped reading "
                  + "its ring while provoking control frames (" + MAX_QUEUED_CONTROL_FRAMES
                  + " queued): connection closed"));
            }
            return false;
          }
          byte[] record = new byte[recordLength];
          encode(MemorySegment.ofArray(record), 0, type, flags, streamId, body, offset, length);
          pending.add(record);
          hasPending = true;
          tx.announceWaiting(true);
        }
      } catch (RingCorruptedException e) {
        closeLater(Status.INTERNAL.withDescription("shared-memory ring corrupted: " + e.getMessage()));
        return false;
      }
    }
    try {
      if (written || committed) {
        tx.wakeConsumer(wakePeer); // every commit, ours or a queued frame's, may need a wake
      }
      if (!written) {
        pokeLoop(); // let the loop retry the queue: space may have freed meanwhile
      }
    } catch (IllegalStateException e) {
      // Closed (and unmapped) concurrently: nobody is left to wake.
    }
    return true;
  }

  /** Frames the peer provokes, as opposed to data and headers bounded by flow control. */
  private static boolean isControl(int type) {
    return switch (type) {
      case FrameLayout.TYPE_PING, FrameLayout.TYPE_PING_ACK, FrameLayout.TYPE_WINDOW_UPDATE,
          FrameLayout.TYPE_RELEASE, FrameLayout.TYPE_RST_STREAM, FrameLayout.TYPE_GOAWAY -> true;
      default -> false;
    };
  }

  private static void encode(MemorySegment dst, long at, int type, int flags, int streamId,
      byte[] body, int offset, int length) {
    dst.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.LENGTH_OFFSET,
        FrameLayout.HEADER_LENGTH + length);
    dst.set(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET, (byte) type);
    dst.set(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET, (byte) flags);
    dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, at + FrameLayout.RESERVED_OFFSET, (short) 0);
    dst.set(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET, streamId);
    if (length > 0) {
      MemorySegment.copy(body, offset, dst, ValueLayout.JAVA_BYTE,
          at + FrameLayout.HEADER_LENGTH, length);
    }
  }

  @GuardedBy("producerLock")
  private int drainPendingLocked() {
    int sent = 0;
    byte[] record;
    while ((record = pending.peek()) != null) {
      long at = tx.claim(record.length);
      if (at < 0) {
        tx.announceWaiting(true);
        return sent;
      }
      MemorySegment.copy(record, 0, tx.data(), ValueLayout.JAVA_BYTE, at, record.length);
      tx.commit();
      pending.poll();
      if (isControl(record[FrameLayout.TYPE_OFFSET])) {
        pendingControl--;
      }
      sent++;
    }
    hasPending = false;
    tx.announceWaiting(false);
    return sent;
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
      boolean sent = send(FrameLayout.TYPE_DATA_BLOCK, flags, streamId, body.array(), 0, 16);
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

  // ------------------------------------------------------------------------------------------
  // Payload memory

  /**
   * A buffer for grpc's framer. Small payloads get a heap buffer (copied inline through the
   * ring); large ones an extent of the pool or of a persistent segment, so the framer writes the
   * message straight into shared memory.
   */
  WritableBuffer allocate(int capacityHint, Supplier<MoveContext> moves) {
    int hint = Math.max(capacityHint, 0);
    if (hint <= inlineThreshold) {
      // Known-length messages ask for exactly their size; streams of unknown length ask per
      // write and grpc grows the next buffer, so a small floor is enough.
      return HeapWritableBuffer.obtain(hint);
    }
    if (state.get() == State.OPEN) {
      long offset = txPool.allocate(hint);
      if (offset >= 0) {
        return new ShmWritableBuffer(this, 0, offset, txPoolMemory.asSlice(offset, hint),
            moves.get());
      }
      TxSegment segment = acquireSegment(hint);
      if (segment != null) {
        return new ShmWritableBuffer(this, segment.id, 0, segment.memory.asSlice(0, hint),
            moves.get());
      }
    }
    return HeapWritableBuffer.obtain(Math.min(hint, MAX_HEAP_CHUNK));
  }

  /** grpc's buffer allocator for one stream, whose data-movement settings its buffers carry. */
  WritableBufferAllocator allocator(Supplier<MoveContext> moves) {
    return hint -> allocate(hint, moves);
  }

  /** Returns an extent we allocated (never sent, or released by the peer). */
  void freeTxExtent(int segmentId, long offset) {
    if (!tryFreeTxExtent(segmentId, offset)) {
      throw new IllegalStateException("freeing unknown extent " + segmentId + "@" + offset);
    }
  }

  private boolean tryFreeTxExtent(int segmentId, long offset) {
    if (segmentId == 0) {
      return txPool.free(offset);
    }
    synchronized (segmentLock) {
      for (TxSegment s : txSegments) {
        if (s.id == segmentId) {
          if (!s.confirmed || !s.inUse || offset != 0) {
            return false; // never lent: offered but unacknowledged, or already free
          }
          s.inUse = false;
          return true;
        }
      }
    }
    return false;
  }

  private TxSegment acquireSegment(int bytes) {
    TxSegment created;
    synchronized (segmentLock) {
      TxSegment best = null;
      for (TxSegment s : txSegments) {
        if (!s.inUse && s.size >= bytes && (best == null || s.size < best.size)) {
          best = s;
        }
      }
      if (best != null) {
        best.inUse = true;
        return best;
      }
      long size = (bytes + SEGMENT_GRANULE - 1) / SEGMENT_GRANULE * SEGMENT_GRANULE;
      if (txSegmentBytes + size > maxSegmentBytes || txSegments.size() >= MAX_SEGMENTS
          || segmentOffered || System.nanoTime() - nextOfferNanos < 0) {
        return null; // one offer at a time: a peer that never answers costs one segment
      }
      int segmentId = nextSegmentId++;
      created = createSegment(segmentId, size);
      if (created == null) {
        return null;
      }
      created.inUse = true; // out of rotation until the peer's SEGMENT_ACK confirms it
      txSegments.add(created);
      txSegmentBytes += size;
      segmentOffered = true;
    }
    // Offered, never waited for: this caller (an application thread, or the loop, where the
    // ack itself arrives) must not depend on the peer's answer. This payload takes the inline
    // path; the segment joins the rotation when the ack comes (onSegmentAck).
    int fd = created.fdToSend;
    created.fdToSend = -1;
    try {
      byte[] msg = new byte[64];
      int len = HandshakeMessage.encode(
          new HandshakeMessage.SegmentAttach(created.id, created.size), msg);
      socket.sendNow(msg, len, fd); // a peer that does not read its socket gets no offer
    } catch (IOException | RuntimeException e) {
      log.log(Level.FINE, name + ": segment " + created.id + " not offered", e);
      synchronized (segmentLock) {
        // Never offered, so never lent: gone at once; a later payload may offer again.
        txSegments.remove(created);
        txSegmentBytes -= created.size;
        created.mapping.close();
        segmentOffered = false;
        nextOfferNanos = System.nanoTime() + SEGMENT_REOFFER_NANOS;
      }
    } finally {
      Linux.close(fd);
    }
    return null;
  }

  @GuardedBy("segmentLock")
  private TxSegment createSegment(int segmentId, long size) {
    if (!SharedMapping.hasRoom(1, PeerSegmentBudget.PEER_SEGMENT_SHARE)) {
      return null; // the process's mappings are scarce: this payload goes inline
    }
    int fd = -1;
    try {
      fd = Linux.memfdCreate("grpc-shm-segment");
      Linux.ftruncate(fd, size);
      Linux.addSeals(fd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
      return new TxSegment(segmentId, size, SharedMapping.map(fd, size), fd);
    } catch (NativeException e) {
      log.log(Level.FINE, name + ": cannot create payload segment of " + size + " bytes", e);
      Linux.close(fd);
      return null;
    }
  }

  /** Called when the last buffer reading a received extent closes. */
  void releaseLease(int segmentId, long offset) {
    if (state.get() == State.OPEN) {
      ByteBuffer body = FrameCodec.scratchBody(FrameLayout.BLOCK_REFERENCE_BODY_LENGTH);
      body.putInt(segmentId).putInt(0).putLong(offset);
      send(FrameLayout.TYPE_RELEASE, 0, 0, body.array(), 0, 16);
    }
    if (outstandingLeases.decrementAndGet() == 0 && state.get() != State.OPEN) {
      maybeReleaseMemory();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  private void pokeLoop() {
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
        tx.wakeConsumer(wakePeer);
      }
      if (hasPending) {
        int drained = 0;
        synchronized (producerLock) {
          if (state.get() == State.OPEN) {
            drained = drainPendingLocked();
          }
        }
        if (drained > 0) {
          tx.wakeConsumer(wakePeer);
        }
        work += drained;
      }
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
    boolean pendingWork = false;
    if (hasPending) {
      tx.announceWaiting(true);
      synchronized (producerLock) {
        byte[] head = pending.peek();
        pendingWork = head != null && tx.hasSpaceFor(head.length);
      }
    }
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
  public boolean tick(long nowNanos, boolean parked) {
    if (state.get() != State.OPEN) {
      return false;
    }
    trimWhenIdle();
    if (!parked) {
      return false;
    }
    boolean work = rx.hasRecords() || peerClosed != null;
    if (hasPending) {
      synchronized (producerLock) {
        byte[] head = pending.peek();
        work |= head != null && tx.hasSpaceFor(head.length);
      }
    }
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
    long txAt = tx.tailPosition();
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
    long[] freed = new long[1];
    long retained = Math.min(ShmTransportConfig.RETAINED_POOL_BYTES, txPoolMemory.byteSize());
    txPool.runIfEmpty(() -> freed[0] += regionMapping.discard(
        txPoolMemory.asSlice(retained)));
    synchronized (segmentLock) {
      for (TxSegment seg : txSegments) {
        if (!seg.inUse && seg.confirmed) {
          freed[0] += seg.mapping.discard(seg.memory);
        }
      }
    }
    if (freed[0] > 0) {
      log.log(Level.FINE, "{0}: idle for {1} s, gave back {2} bytes of shared memory",
          new Object[] {name, idleTicks, freed[0]});
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
    if (state.get() != State.OPEN) {
      boolean moving;
      synchronized (movesLock) {
        moving = !movesInFlight.isEmpty();
      }
      if (moving) {
        // Teardown waits for data movers (up to 10 s for a stuck device): not on the loop,
        // which serves other connections.
        Workers.get().execute(this::releaseSocketAndMaybeMemory);
      } else {
        releaseSocketAndMaybeMemory();
      }
    }
  }

  private void onRecord(MemorySegment data, int at, int length) {
    int type = data.get(ValueLayout.JAVA_BYTE, at + FrameLayout.TYPE_OFFSET) & 0xff;
    int flags = data.get(ValueLayout.JAVA_BYTE, at + FrameLayout.FLAGS_OFFSET) & 0xff;
    int streamId = data.get(ValueLayout.JAVA_INT_UNALIGNED, at + FrameLayout.STREAM_ID_OFFSET);
    int bodyLength = length - FrameLayout.HEADER_LENGTH;
    if (type == FrameLayout.TYPE_PADDING || type > FrameLayout.TYPE_MAX) {
      throw new ProtocolException("unknown frame type " + type);
    }
    if (type == FrameLayout.TYPE_DATA_INLINE) {
      byte[] payload = new byte[bodyLength];
      MemorySegment.copy(data, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH, payload, 0,
          bodyLength);
      deliver(streamId, flags, ReadableBuffers.wrap(payload), bodyLength);
      return;
    }
    if (scratch.length < bodyLength) {
      scratch = new byte[Math.max(bodyLength, scratch.length * 2)];
      scratchView = ByteBuffer.wrap(scratch).order(ByteOrder.LITTLE_ENDIAN);
    }
    MemorySegment.copy(data, ValueLayout.JAVA_BYTE, at + FrameLayout.HEADER_LENGTH, scratch, 0,
        bodyLength);
    ByteBuffer body = scratchView.clear().limit(bodyLength);
    try {
      switch (type) {
        case FrameLayout.TYPE_DATA_BLOCK -> onDataBlock(streamId, flags, body);
        case FrameLayout.TYPE_RELEASE -> {
          int segmentId = body.getInt();
          body.getInt();
          long offset = body.getLong();
          if (!tryFreeTxExtent(segmentId, offset)) {
            throw new ProtocolException(
                "peer released extent " + segmentId + "@" + offset + " it does not hold");
          }
        }
        default -> handler.onFrame(type, flags, streamId, body);
      }
    } catch (java.nio.BufferUnderflowException e) {
      throw new ProtocolException(FrameLayout.typeName(type) + " frame body truncated ("
          + bodyLength + " bytes)");
    }
  }

  private void onDataBlock(int streamId, int flags, ByteBuffer body) {
    int segmentId = body.getInt();
    long length = body.getInt() & 0xffffffffL;
    long offset = body.getLong();
    MemorySegment memory;
    SharedMapping mapping;
    if (segmentId == 0) {
      memory = rxPoolMemory;
      mapping = regionMapping;
    } else {
      RxSegment segment = rxSegments.get(segmentId);
      if (segment == null) {
        throw new ProtocolException("DATA_BLOCK references unknown segment " + segmentId);
      }
      memory = segment.memory();
      mapping = segment.mapping();
    }
    if (length == 0 || length > Integer.MAX_VALUE || offset < 0
        || offset > memory.byteSize() - length) {
      throw new ProtocolException("DATA_BLOCK extent " + segmentId + "@" + offset + "+" + length
          + " outside its segment of " + memory.byteSize() + " bytes");
    }
    outstandingLeases.incrementAndGet();
    RxLease lease = new RxLease(this, segmentId, offset);
    deliver(streamId, flags,
        new ShmReadableBuffer(memory.asSlice(offset, length), lease, mapping), (int) length);
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
            case HandshakeMessage.SegmentAttach attach -> onSegmentAttach(attach, controlFds[0]);
            case HandshakeMessage.SegmentAck ack -> onSegmentAck(ack);
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

  private void onSegmentAck(HandshakeMessage.SegmentAck ack) throws HandshakeException {
    synchronized (segmentLock) {
      for (TxSegment s : txSegments) {
        if (s.id == ack.segmentId()) {
          if (s.confirmed) {
            throw new HandshakeException("second ack for segment " + s.id);
          }
          segmentOffered = false;
          if (ack.accepted()) {
            s.confirmed = true; // joins the rotation
            s.inUse = false;
          } else {
            // Refused (the peer's limits): never lent, so unmapped at once; no new offer for a
            // while, or a peer at its limit would make us build one per large message.
            txSegments.remove(s);
            txSegmentBytes -= s.size;
            s.mapping.close();
            nextOfferNanos = System.nanoTime() + SEGMENT_REOFFER_NANOS;
          }
          return;
        }
      }
    }
    throw new HandshakeException("ack for segment " + ack.segmentId() + " we never offered");
  }

  private void onSegmentAttach(HandshakeMessage.SegmentAttach attach, int fd) throws IOException {
    int segmentId = attach.segmentId();
    long size = attach.size();
    boolean ok = fd >= 0 && segmentId > 0 && !rxSegments.containsKey(segmentId) && size > 0
        && size <= maxSegmentBytes - rxSegmentBytes && rxSegments.size() < MAX_SEGMENTS;
    if (ok) {
      String overBudget = PeerSegmentBudget.tryReserve(peerUid, size);
      if (overBudget != null) {
        ok = false;
        LIMIT_LOG.log(Level.WARNING, "segment-budget", () -> name
            + ": refused a peer's segment of " + size + " bytes: " + overBudget);
      }
    }
    if (ok) {
      try {
        int seals = Linux.getSeals(fd);
        long actual = Linux.fileSize(fd);
        // Without the shrink seal the peer could truncate the file under us (SIGBUS on access).
        ok = (seals & Linux.F_SEAL_SHRINK) != 0 && actual >= size;
        if (ok) {
          rxSegments.put(segmentId, new RxSegment(SharedMapping.map(fd, size), size));
          rxSegmentBytes += size;
        }
      } catch (NativeException e) {
        log.log(Level.FINE, name + ": cannot map peer segment " + segmentId, e);
        ok = false;
      }
      if (!ok) {
        PeerSegmentBudget.release(peerUid, size);
      }
    }
    if (!ok) {
      log.log(Level.FINE, "{0}: refused peer segment {1} of {2} bytes",
          new Object[] {name, segmentId, size});
    }
    byte[] msg = new byte[32];
    int len = HandshakeMessage.encode(new HandshakeMessage.SegmentAck(segmentId, ok), msg);
    socket.sendNow(msg, len, -1); // the loop never blocks on a peer's socket
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
  private void closeLater(Status status) {
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
      synchronized (producerLock) {
        pending.clear();
        hasPending = false;
        pendingControl = 0;
      }
      maybeReleaseMemory();
    }
  }

  private synchronized void maybeReleaseMemory() {
    if (resourcesReleased || socketReleased.get() == 0 || outstandingLeases.get() != 0) {
      return;
    }
    resourcesReleased = true;
    state.set(State.TERMINATED);
    boolean moversStopped = quiesceMoves();
    synchronized (segmentLock) {
      for (TxSegment s : txSegments) {
        closeMapping(s.mapping, moversStopped);
      }
      txSegments.clear();
    }
    for (RxSegment s : rxSegments.values()) {
      s.mapping().close();
      PeerSegmentBudget.release(peerUid, s.size());
    }
    rxSegments.clear();
    closeMapping(regionMapping, moversStopped);
  }

  private static void closeMapping(SharedMapping mapping, boolean moversStopped) {
    if (!moversStopped) {
      mapping.pinForever(); // a late write lands in a private page, never in unmapped memory
    }
    mapping.close();
  }

  /**
   * Stops new moves into our memory and waits for those in flight (a 64 MiB engine copy takes
   * milliseconds). False if some did not finish within {@link #MOVE_QUIESCE_NANOS}: a stuck
   * device may still write, so the memory must never be unmapped.
   */
  private boolean quiesceMoves() {
    List<BulkSession.Move> pendingMoves;
    synchronized (movesLock) {
      memoryClosing = true;
      pendingMoves = new ArrayList<>(movesInFlight);
    }
    long deadline = System.nanoTime() + MOVE_QUIESCE_NANOS;
    boolean stopped = true;
    for (BulkSession.Move m : pendingMoves) {
      stopped &= m.quiesce(deadline);
    }
    if (!stopped) {
      log.log(Level.WARNING, "{0}: a data mover did not finish within {1} s of the connection"
          + " closing; its payload memory stays mapped", new Object[] {name,
          TimeUnit.NANOSECONDS.toSeconds(MOVE_QUIESCE_NANOS)});
    }
    return stopped;
  }

  /** Registers a mover's copy into our memory; false once teardown began (do not start it). */
  boolean moveStarted(BulkSession.Move move) {
    synchronized (movesLock) {
      if (memoryClosing) {
        return false;
      }
      movesInFlight.add(move);
      return true;
    }
  }

  void moveEnded(BulkSession.Move move) {
    synchronized (movesLock) {
      movesInFlight.remove(move);
    }
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
