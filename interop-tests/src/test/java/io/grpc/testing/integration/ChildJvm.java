package io.grpc.testing.integration;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A second JVM running a main class of this test class path. It prints {@code PORT <n>} when
 * ready and exits when its stdin closes; {@link #close} closes stdin, waits briefly, then kills.
 */
final class ChildJvm implements AutoCloseable {
  private final Process process;
  private final int port;

  private ChildJvm(Process process, int port) {
    this.process = process;
    this.port = port;
  }

  static ChildJvm start(Class<?> mainClass, long timeoutSeconds) throws IOException {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new ArrayList<>(List.of(java,
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Xmx1g", "-cp", System.getProperty("java.class.path"), mainClass.getName()));
    Process process = new ProcessBuilder(command)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    BufferedReader out = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    CompletableFuture<String> firstLine = CompletableFuture.supplyAsync(() -> {
      try {
        return out.readLine();
      } catch (IOException e) {
        return null;
      }
    });
    try {
      String line = firstLine.get(timeoutSeconds, TimeUnit.SECONDS);
      if (line == null || !line.startsWith("PORT ")) {
        throw new IOException("child JVM did not report its port: " + line);
      }
      return new ChildJvm(process, Integer.parseInt(line.substring(5).trim()));
    } catch (Exception e) {
      process.destroyForcibly();
      throw new IOException("child JVM failed to start", e);
    }
  }

  int port() {
    return port;
  }

  long pid() {
    return process.pid();
  }

  /** kill -9, as a crash would. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  @Override
  public void close() throws InterruptedException {
    try {
      process.getOutputStream().close();
    } catch (IOException ignored) {
      // Already gone.
    }
    if (!process.waitFor(5, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
