package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.internal.ReadableBuffer;
import io.grpc.internal.WritableBuffer;
import io.grpcshm.internal.frame.ProtocolException;
import io.grpcshm.internal.handshake.HandshakeException;
import io.grpcshm.internal.handshake.HandshakeMessage;
import io.grpcshm.internal.movement.BulkSession;
import io.grpcshm.internal.movement.MoveContext;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.NativeException;
import io.grpcshm.internal.nativeio.SharedMapping;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A connection's payload memory, both directions: the pool in the region and the extra segments
 * we offer the peer (outbound), the pool and segments the peer offered us (inbound), the leases
 * on received extents, and the data movers writing into our memory. Teardown ({@link #release})
 * waits for those movers and unmaps everything once the application closed its last received
 * buffer.
 *
 * <p>Nothing here waits for the peer: a new segment is offered (SEGMENT_ATTACH) and joins the
 * rotation when its SEGMENT_ACK arrives on the loop; payloads go through the pool or inline
 * meanwhile. Lock order: {@link #segmentLock} and {@link #movesLock} are leaves (nothing is
 * taken while holding them).
 */
final class PayloadMemory {
  private static final Logger log = Logger.getLogger(PayloadMemory.class.getName());
  private static final RateLimitedLog LIMIT_LOG =
      new RateLimitedLog(log, TimeUnit.SECONDS.toNanos(10));
  /** Segments are sized in whole granules, so one serves a range of message sizes. */
  private static final long SEGMENT_GRANULE = 1L << 20;
  private static final int MAX_SEGMENTS = 256;
  private static final long SEGMENT_REOFFER_NANOS = TimeUnit.SECONDS.toNanos(1);
  /** Largest heap buffer handed to the framer when shared memory is exhausted. */
  private static final int MAX_HEAP_CHUNK = 1 << 20;
  /** Longest teardown waits for data movers still writing into our memory. */
  private static final long MOVE_QUIESCE_NANOS = TimeUnit.SECONDS.toNanos(10);
  /** Room for an encoded SEGMENT_ATTACH or SEGMENT_ACK (a few fixed fields). */
  private static final int SEGMENT_MESSAGE_CAPACITY = 64;

  private final ShmConnection connection;
  private final String name;
  private final UnixSeqpacketSocket socket;
  private final SharedMapping regionMapping;
  private final MemorySegment txPoolMemory;
  private final MemorySegment rxPoolMemory;
  private final BlockPool txPool;
  private final int inlineThreshold;
  private final long maxSegmentBytes;
  /** The peer's uid (SO_PEERCRED), for the per-uid limits. */
  private final int peerUid;

  private final Object segmentLock = new Object();
  @GuardedBy("segmentLock") private final List<TxSegment> txSegments = new ArrayList<>();
  @GuardedBy("segmentLock") private long txSegmentBytes;
  @GuardedBy("segmentLock") private int nextSegmentId = 1;
  /** A SEGMENT_ATTACH awaits its ack: no second offer meanwhile. */
  @GuardedBy("segmentLock") private boolean segmentOffered;
  /** After a refused offer, the next one waits until then. */
  @GuardedBy("segmentLock") private long nextOfferNanos = System.nanoTime();

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

  PayloadMemory(ShmConnection connection, String name, UnixSeqpacketSocket socket, int peerUid,
      SharedMapping regionMapping, MemorySegment txPoolMemory, MemorySegment rxPoolMemory,
      int inlineThreshold, long maxSegmentBytes) {
    this.connection = connection;
    this.name = name;
    this.socket = socket;
    this.peerUid = peerUid;
    this.regionMapping = regionMapping;
    this.txPoolMemory = txPoolMemory;
    this.rxPoolMemory = rxPoolMemory;
    this.txPool = new BlockPool(Math.toIntExact(txPoolMemory.byteSize()));
    this.inlineThreshold = inlineThreshold;
    this.maxSegmentBytes = maxSegmentBytes;
  }

  // ------------------------------------------------------------------------------------------
  // Outbound: what grpc's framer writes into

  /**
   * A buffer for grpc's framer. Small payloads get a heap buffer (copied inline through the
   * ring); large ones an extent of the pool or of a persistent segment, so the framer writes the
   * message straight into shared memory.
   */
  /** Whether {@link #allocate} would try shared memory for this hint (else a heap buffer). */
  boolean wouldUseSharedMemory(int capacityHint) {
    return capacityHint > inlineThreshold;
  }

  WritableBuffer allocate(int capacityHint, Supplier<MoveContext> moves) {
    int hint = Math.max(capacityHint, 0);
    if (hint <= inlineThreshold) {
      // Known-length messages ask for exactly their size; streams of unknown length ask per
      // write and grpc grows the next buffer, so a small floor is enough.
      return HeapWritableBuffer.obtain(hint);
    }
    if (connection.isOpen()) {
      long offset = txPool.allocate(hint);
      if (offset >= 0) {
        return new ShmWritableBuffer(connection, 0, offset, txPoolMemory.asSlice(offset, hint),
            moves.get());
      }
      TxSegment segment = acquireSegment(hint);
      if (segment != null) {
        return new ShmWritableBuffer(connection, segment.id, 0, segment.memory.asSlice(0, hint),
            moves.get());
      }
    }
    return HeapWritableBuffer.obtain(Math.min(hint, MAX_HEAP_CHUNK));
  }

  /** Returns an extent we allocated (never sent, or released by the peer). */
  void freeTxExtent(int segmentId, long offset) {
    if (!tryFreeTxExtent(segmentId, offset)) {
      throw new IllegalStateException("freeing unknown extent " + segmentId + "@" + offset);
    }
  }

  /** A RELEASE from the peer: the extent must be one we lent it. */
  void onRelease(int segmentId, long offset) {
    if (!tryFreeTxExtent(segmentId, offset)) {
      throw new ProtocolException(
          "peer released extent " + segmentId + "@" + offset + " it does not hold");
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
      byte[] msg = new byte[SEGMENT_MESSAGE_CAPACITY];
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

  /** The peer's answer to our SEGMENT_ATTACH (loop thread). */
  void onSegmentAck(HandshakeMessage.SegmentAck ack) throws HandshakeException {
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

  // ------------------------------------------------------------------------------------------
  // Inbound: extents the peer lends us

  /** A peer's SEGMENT_ATTACH (loop thread): mapped if it is sealed and within every limit. */
  void onSegmentAttach(HandshakeMessage.SegmentAttach attach, int fd) throws IOException {
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
    byte[] msg = new byte[SEGMENT_MESSAGE_CAPACITY];
    int len = HandshakeMessage.encode(new HandshakeMessage.SegmentAck(segmentId, ok), msg);
    socket.sendNow(msg, len, -1); // the loop never blocks on a peer's socket
  }

  /**
   * The extent a DATA_BLOCK names, checked against the segment it claims, as a buffer read in
   * place; closing its last slice sends RELEASE.
   */
  ReadableBuffer leaseExtent(int segmentId, long length, long offset) {
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
    RxLease lease = new RxLease(connection, segmentId, offset);
    return new ShmReadableBuffer(memory.asSlice(offset, length), lease, mapping);
  }

  /** A lease that is not a received extent (a reply mailbox's waiter); ends with leaseEnded. */
  void leaseStarted() {
    outstandingLeases.incrementAndGet();
  }

  /** A page of our pool for a reply mailbox, or -1 if the pool has none free. */
  long allocateMailboxPage() {
    return txPool.allocateMailbox();
  }

  void freeMailboxPage(long offset) {
    if (!txPool.freeMailbox(offset)) {
      throw new IllegalStateException("freeing unknown reply mailbox page @" + offset);
    }
  }

  /** Our pool's memory (reply mailboxes live there). */
  MemorySegment txPoolMemory() {
    return txPoolMemory;
  }

  /** The peer's pool's memory (as a server, where the client's mailboxes are). */
  MemorySegment rxPoolMemory() {
    return rxPoolMemory;
  }

  /** The last buffer reading a received extent closed; true if that was the last lease. */
  boolean leaseEnded() {
    return outstandingLeases.decrementAndGet() == 0;
  }

  boolean hasLeases() {
    return outstandingLeases.get() != 0;
  }

  // ------------------------------------------------------------------------------------------
  // Idle trimming and teardown

  /**
   * Gives back the pool beyond {@link ShmTransportConfig#RETAINED_POOL_BYTES} if nothing is
   * lent from it, and every idle extra segment (MADV_REMOVE frees the memory file's pages, so
   * the peer's resident memory drops too). Returns the bytes given back.
   */
  long trim() {
    long[] freed = new long[1];
    long retained = Math.min(ShmTransportConfig.RETAINED_POOL_BYTES, txPoolMemory.byteSize());
    txPool.runIfEmpty(() -> freed[0] += regionMapping.discard(txPoolMemory.asSlice(retained)));
    synchronized (segmentLock) {
      for (TxSegment seg : txSegments) {
        if (!seg.inUse && seg.confirmed) {
          freed[0] += seg.mapping.discard(seg.memory);
        }
      }
    }
    return freed[0];
  }

  /** True while a data mover may still write into our memory. */
  boolean hasMovesInFlight() {
    synchronized (movesLock) {
      return !movesInFlight.isEmpty();
    }
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

  /**
   * Unmaps everything: our segments, the peer's, the region. Called once, after the socket
   * closed and the last lease ended.
   */
  void release() {
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
}
