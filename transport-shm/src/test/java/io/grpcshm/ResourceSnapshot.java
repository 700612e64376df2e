package io.grpcshm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Open descriptors, shm mappings and live grpc-shm threads of this process, for leak checks. */
public record ResourceSnapshot(long fds, long shmMappings, long shmThreads) {
  public static ResourceSnapshot take() throws IOException {
    long fds;
    try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
      fds = s.count();
    }
    long mappings;
    try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
      mappings = lines.filter(l -> l.contains("memfd:grpc-shm")).count();
    }
    long threads = Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().startsWith("grpc-shm-")).count();
    return new ResourceSnapshot(fds, mappings, threads);
  }

  /** Waits up to {@code millis} for the process to come back to {@code baseline}. */
  public static ResourceSnapshot awaitBaseline(ResourceSnapshot baseline, long millis)
      throws IOException, InterruptedException {
    long deadline = System.currentTimeMillis() + millis;
    ResourceSnapshot now = take();
    while (System.currentTimeMillis() < deadline
        && (now.fds > baseline.fds || now.shmMappings > baseline.shmMappings
            || now.shmThreads > baseline.shmThreads)) {
      Thread.sleep(20);
      now = take();
    }
    return now;
  }
}
