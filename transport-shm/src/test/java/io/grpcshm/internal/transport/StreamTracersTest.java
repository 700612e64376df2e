package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.InternalChannelz.TransportStats;
import io.grpc.internal.TransportTracer;
import java.util.ArrayList;
import java.util.List;
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
          tracers.streamClosed(stream); // a second close adds nothing
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
  }
}
