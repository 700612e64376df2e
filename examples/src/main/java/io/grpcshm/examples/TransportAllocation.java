package io.grpcshm.examples;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordingFile;

/**
 * Bytes a transport's own code allocates in this JVM, from JDK Flight Recorder's allocation
 * samples: each sample's weight goes to the first frame outside the JDK; it counts if that frame
 * is in one of the transport's packages. An estimate (samples are throttled), but unbiased, and
 * the same rule for every transport.
 */
final class TransportAllocation {
  private final Recording recording = new Recording();

  private TransportAllocation() {}

  static TransportAllocation start() {
    TransportAllocation t = new TransportAllocation();
    t.recording.enable("jdk.ObjectAllocationSample").with("throttle", "2000/s").withStackTrace();
    t.recording.start();
    return t;
  }

  /** Stops recording; the bytes attributed to frames in {@code packages} (name prefixes). */
  long stop(List<String> packages) throws IOException {
    recording.stop();
    Path file = Files.createTempFile("transport-alloc", ".jfr");
    try {
      recording.dump(file);
      // A sample's weight is what its thread allocated since that thread's previous sample: a
      // thread's first sample here also carries what it allocated before the recording, so it
      // is dropped.
      Map<Long, List<RecordedEvent>> byThread = new HashMap<>();
      for (RecordedEvent e : RecordingFile.readAllEvents(file)) {
        if (e.getStackTrace() != null && e.getThread() != null
            && e.getEventType().getName().equals("jdk.ObjectAllocationSample")) {
          byThread.computeIfAbsent(e.getThread().getId(), k -> new ArrayList<>()).add(e);
        }
      }
      long bytes = 0;
      for (List<RecordedEvent> samples : byThread.values()) {
        samples.sort(Comparator.comparing(RecordedEvent::getStartTime));
        for (RecordedEvent e : samples.subList(1, samples.size())) {
          bytes += transportBytes(e, packages);
        }
      }
      return bytes;
    } finally {
      recording.close();
      Files.deleteIfExists(file);
    }
  }

  /** The sample's weight if its first frame outside the JDK is transport code, else 0. */
  private static long transportBytes(RecordedEvent e, List<String> packages) {
    for (RecordedFrame f : e.getStackTrace().getFrames()) {
      String type = f.getMethod().getType().getName();
      if (type.startsWith("java.") || type.startsWith("jdk.") || type.startsWith("sun.")) {
        continue;
      }
      return packages.stream().anyMatch(type::startsWith) ? e.getLong("weight") : 0;
    }
    return 0;
  }

  /** The packages of each contender's transport code. */
  static List<String> packagesOf(String label) {
    return switch (label) {
      case "shm", "shm-b" -> List.of("io.grpcshm.internal.");
      case "inproc" -> List.of("io.grpc.inprocess.");
      default -> List.of("io.grpc.netty.", "io.netty.");
    };
  }
}
