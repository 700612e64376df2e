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

  /**
   * The inodes of the shared-memory files this process maps now: unlike a count, a new
   * connection's region shows here even while an earlier connection's mapping goes away.
   */
  public static java.util.Set<String> shmMappingIds() throws IOException {
    try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
      return lines.filter(l -> l.contains("memfd:grpc-shm"))
          .map(l -> l.trim().split("\\s+")[4]).collect(java.util.stream.Collectors.toSet());
    }
  }

  /**
   * How long a test waits for resources to come back. Release is asynchronous by design (event
   * loops and workers linger 2 s after their last use; teardown may wait for data movers), and a
   * busy host delays all of it by seconds: the checks are that everything is released, not how
   * fast (peer-death latency is asserted on its own). The wait ends as soon as the baseline is
   * reached.
   */
  public static final long RELEASE_DEADLINE_MILLIS = 30_000;

  /** Waits for the process to come back to {@code baseline}, at most {@link #RELEASE_DEADLINE_MILLIS}. */
  public static ResourceSnapshot awaitReleased(ResourceSnapshot baseline)
      throws IOException, InterruptedException {
    return awaitBaseline(baseline, RELEASE_DEADLINE_MILLIS);
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

  /**
   * A snapshot once earlier connections' asynchronous teardown has finished (three equal
   * readings 50 ms apart, at most 5 s): a baseline that later checks can compare against.
   */
  public static ResourceSnapshot settled() throws IOException, InterruptedException {
    ResourceSnapshot last = take();
    int stable = 0;
    long deadline = System.currentTimeMillis() + 5000;
    while (stable < 3 && System.currentTimeMillis() < deadline) {
      Thread.sleep(50);
      ResourceSnapshot now = take();
      stable = now.equals(last) ? stable + 1 : 0;
      last = now;
    }
    return last;
  }
}
