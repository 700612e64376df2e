package io.grpcshm.examples;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
      long bytes = 0;
      for (RecordedEvent e : RecordingFile.readAllEvents(file)) {
        if (e.getStackTrace() == null || !e.getEventType().getName().equals(
            "jdk.ObjectAllocationSample")) {
          continue;
        }
        for (RecordedFrame f : e.getStackTrace().getFrames()) {
          String type = f.getMethod().getType().getName();
          if (type.startsWith("java.") || type.startsWith("jdk.") || type.startsWith("sun.")) {
            continue;
          }
          if (packages.stream().anyMatch(type::startsWith)) {
            bytes += e.getLong("weight");
          }
          break;
        }
      }
      return bytes;
    } finally {
      recording.close();
      Files.deleteIfExists(file);
    }
  }

  /** The packages of each contender's transport code. */
  static List<String> packagesOf(String label) {
    return switch (label) {
      case "shm" -> List.of("io.grpcshm.internal.");
      case "inproc" -> List.of("io.grpc.inprocess.");
      default -> List.of("io.grpc.netty.", "io.netty.");
    };
  }
}
