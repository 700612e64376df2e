package io.grpcshm.internal.transport;

import io.grpc.InternalChannelz.TransportStats;
import io.grpc.internal.TransportTracer;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * A transport's channelz counters when its streams run on different threads. grpc's {@link
 * TransportTracer} is written without synchronisation from a stream's transport thread (one
 * thread per transport in Netty); here each stream is its own transport thread ({@link
 * StreamSerializer}), so each open stream counts in a tracer no other stream writes. {@link
 * #stats} adds every tracer not yet folded into the totals, read on the fly, as channelz reads
 * Netty's.
 *
 * <p>A stream's tracer is handed to a later stream once its listener has closed, the last thing
 * grpc reports, instead of a new one per stream: up to {@link #SPARE_SLOTS} wait in lock-free
 * slots, where a slot's compare-and-set orders the old stream's writes before the new one's. A
 * tracer with no free slot has its counts folded into the totals and is dropped, so the tracers
 * kept are the open streams' and at most {@code SPARE_SLOTS} spares.
 */
final class StreamTracers {
  /** Spare tracers; a power of two. 16 covers the concurrency profiled (8 calls in flight). */
  static final int SPARE_SLOTS = 16;

  private final AtomicReferenceArray<TransportTracer> spares =
      new AtomicReferenceArray<>(SPARE_SLOTS);
  /** Every tracer whose counts are not in the totals yet: in use by a stream, or spare. */
  private final Set<TransportTracer> unfolded = ConcurrentHashMap.newKeySet();
  private final LongAdder streamsStarted = new LongAdder();
  private final LongAdder streamsSucceeded = new LongAdder();
  private final LongAdder streamsFailed = new LongAdder();
  private final LongAdder messagesSent = new LongAdder();
  private final LongAdder messagesReceived = new LongAdder();
  private final LongAdder keepAlivesSent = new LongAdder();
  private final AtomicLong lastLocalStreamCreatedNanos = new AtomicLong();
  private final AtomicLong lastRemoteStreamCreatedNanos = new AtomicLong();
  private final AtomicLong lastMessageSentNanos = new AtomicLong();
  private final AtomicLong lastMessageReceivedNanos = new AtomicLong();

  /**
   * The tracer of a new stream, a spare one where there is one. The stream gives it back with
   * {@link #streamClosed}, exactly once, after its last report to it.
   */
  TransportTracer newStream() {
    int start = slotHint();
    for (int i = 0; i < SPARE_SLOTS; i++) {
      int slot = (start + i) & (SPARE_SLOTS - 1);
      TransportTracer spare = spares.get(slot);
      if (spare != null && spares.compareAndSet(slot, spare, null)) {
        return spare;
      }
    }
    TransportTracer tracer = new TransportTracer();
    unfolded.add(tracer);
    return tracer;
  }

  /**
   * A stream whose listener closed gives back its tracer: kept as a spare, or, with every slot
   * taken, its counts folded into the totals. Each stream calls this once; a second call for
   * the same tracer could hand it to two streams at once.
   */
  void streamClosed(TransportTracer tracer) {
    int start = slotHint();
    for (int i = 0; i < SPARE_SLOTS; i++) {
      int slot = (start + i) & (SPARE_SLOTS - 1);
      if (spares.get(slot) == null && spares.compareAndSet(slot, null, tracer)) {
        return;
      }
    }
    if (unfolded.remove(tracer)) {
      TransportStats s = tracer.getStats();
      streamsStarted.add(s.streamsStarted);
      streamsSucceeded.add(s.streamsSucceeded);
      streamsFailed.add(s.streamsFailed);
      messagesSent.add(s.messagesSent);
      messagesReceived.add(s.messagesReceived);
      later(lastLocalStreamCreatedNanos, s.lastLocalStreamCreatedTimeNanos);
      later(lastRemoteStreamCreatedNanos, s.lastRemoteStreamCreatedTimeNanos);
      later(lastMessageSentNanos, s.lastMessageSentTimeNanos);
      later(lastMessageReceivedNanos, s.lastMessageReceivedTimeNanos);
    }
  }

  /** Tracers kept (in use or spare); for tests. */
  int trackedTracers() {
    return unfolded.size();
  }

  /** Spreads concurrent callers over the slots, so they do not all contend for the first. */
  private static int slotHint() {
    return (int) Thread.currentThread().threadId();
  }

  void keepAliveSent() {
    keepAlivesSent.increment();
  }

  TransportStats stats() {
    long started = streamsStarted.sum();
    long succeeded = streamsSucceeded.sum();
    long failed = streamsFailed.sum();
    long sent = messagesSent.sum();
    long received = messagesReceived.sum();
    long localCreated = lastLocalStreamCreatedNanos.get();
    long remoteCreated = lastRemoteStreamCreatedNanos.get();
    long lastSent = lastMessageSentNanos.get();
    long lastReceived = lastMessageReceivedNanos.get();
    for (TransportTracer tracer : unfolded) {
      TransportStats s = tracer.getStats();
      started += s.streamsStarted;
      succeeded += s.streamsSucceeded;
      failed += s.streamsFailed;
      sent += s.messagesSent;
      received += s.messagesReceived;
      localCreated = Math.max(localCreated, s.lastLocalStreamCreatedTimeNanos);
      remoteCreated = Math.max(remoteCreated, s.lastRemoteStreamCreatedTimeNanos);
      lastSent = Math.max(lastSent, s.lastMessageSentTimeNanos);
      lastReceived = Math.max(lastReceived, s.lastMessageReceivedTimeNanos);
    }
    return new TransportStats(started, localCreated, remoteCreated, succeeded, failed, sent,
        received, keepAlivesSent.sum(), lastSent, lastReceived, -1, -1);
  }

  private static void later(AtomicLong latest, long nanos) {
    latest.accumulateAndGet(nanos, Math::max);
  }
}
