package io.grpcshm.internal.transport;

import io.grpc.InternalChannelz.TransportStats;
import io.grpc.internal.TransportTracer;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A transport's channelz counters when its streams run on different threads. grpc's {@link
 * TransportTracer} is written without synchronisation from a stream's transport thread (one
 * thread per transport in Netty); here each stream is its own transport thread ({@link
 * StreamSerializer}), so each stream counts in a tracer of its own, and its counts join the
 * transport's totals once its listener has closed, the last thing grpc reports. {@link #stats}
 * adds the open streams' tracers, read on the fly, as channelz reads Netty's.
 */
final class StreamTracers {
  private final Set<TransportTracer> open = ConcurrentHashMap.newKeySet();
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

  /** The tracer of a new stream; {@link #streamClosed} once its listener closed. */
  TransportTracer newStream() {
    TransportTracer tracer = new TransportTracer();
    open.add(tracer);
    return tracer;
  }

  /** Folds a finished stream's counts into the totals (once; later calls do nothing). */
  void streamClosed(TransportTracer tracer) {
    if (open.remove(tracer)) {
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
    for (TransportTracer tracer : open) {
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
