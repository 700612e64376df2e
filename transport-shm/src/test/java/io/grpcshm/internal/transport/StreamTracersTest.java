package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.InternalChannelz.TransportStats;
import io.grpc.internal.TransportTracer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class StreamTracersTest {
  @Test
  void streamsCountingOnManyThreadsAddUpExactly() throws Exception {
    StreamTracers tracers = new StreamTracers();
    int threads = 4;
    int streamsPerThread = 5_000;
    List<Thread> workers = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int id = t;
      Thread w = new Thread(() -> {
        for (int i = 0; i < streamsPerThread; i++) {
          TransportTracer stream = tracers.newStream();
          stream.reportLocalStreamStarted();
          stream.reportMessageSent(2);
          stream.reportMessageReceived();
          stream.reportStreamClosed(id % 2 == 0);
          tracers.streamClosed(stream);
        }
      });
      workers.add(w);
      w.start();
    }
    TransportTracer open = tracers.newStream(); // still open: counted on the fly
    open.reportRemoteStreamStarted();
    open.reportMessageSent(1);
    tracers.keepAliveSent();
    for (Thread w : workers) {
      w.join(60_000);
    }
    TransportStats s = tracers.stats();
    int closed = threads * streamsPerThread;
    assertEquals(closed + 1, s.streamsStarted);
    assertEquals(closed / 2, s.streamsSucceeded);
    assertEquals(closed / 2, s.streamsFailed);
    assertEquals(2L * closed + 1, s.messagesSent);
    assertEquals(closed, s.messagesReceived);
    assertEquals(1, s.keepAlivesSent);
    // Closed streams' tracers went to later streams: at most one per thread in use at a time.
    assertTrue(tracers.trackedTracers() <= threads + 1 + StreamTracers.SPARE_SLOTS,
        tracers.trackedTracers() + " tracers kept for " + (closed + 1) + " streams");
  }

  @Test
  void sparesServeNewStreamsAndTheRestAreFoldedExactly() {
    StreamTracers tracers = new StreamTracers();
    int open = StreamTracers.SPARE_SLOTS + 24;
    List<TransportTracer> streams = new ArrayList<>();
    for (int i = 0; i < open; i++) {
      TransportTracer t = tracers.newStream();
      t.reportLocalStreamStarted();
      t.reportMessageSent(1);
      streams.add(t);
    }
    assertEquals(open, tracers.trackedTracers());
    for (TransportTracer t : streams) {
      t.reportStreamClosed(true);
      tracers.streamClosed(t);
    }
    // The first SPARE_SLOTS stay as spares; the rest had their counts folded and were dropped.
    assertEquals(StreamTracers.SPARE_SLOTS, tracers.trackedTracers());
    TransportStats afterClose = tracers.stats();
    assertEquals(open, afterClose.streamsStarted);
    assertEquals(open, afterClose.streamsSucceeded);
    assertEquals(open, afterClose.messagesSent);

    Set<TransportTracer> reused = Collections.newSetFromMap(new IdentityHashMap<>());
    for (int i = 0; i < StreamTracers.SPARE_SLOTS; i++) {
      reused.add(tracers.newStream());
    }
    assertEquals(StreamTracers.SPARE_SLOTS, reused.size(), "each spare handed out once");
    assertEquals(StreamTracers.SPARE_SLOTS, tracers.trackedTracers(), "no new tracer needed");
    TransportTracer fresh = tracers.newStream();
    assertFalse(reused.contains(fresh));
    assertEquals(StreamTracers.SPARE_SLOTS + 1, tracers.trackedTracers());
    fresh.reportLocalStreamStarted();
    assertEquals(open + 1, tracers.stats().streamsStarted, "a reused tracer keeps its counts");
  }
}
