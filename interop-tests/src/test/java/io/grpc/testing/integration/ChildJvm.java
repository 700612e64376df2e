package io.grpc.testing.integration;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A second JVM running a main class of this test class path. It prints {@code PORT <n>} (or,
 * like grpc's interop server, {@code Server started on port <n>}) when ready and exits when its
 * stdin closes or on SIGTERM; {@link #close} closes stdin, waits briefly, then kills.
 */
final class ChildJvm implements AutoCloseable {
  private final Process process;
  private final int port;

  private ChildJvm(Process process, int port) {
    this.process = process;
    this.port = port;
  }

  static ChildJvm start(Class<?> mainClass, long timeoutSeconds, String... args)
      throws IOException {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new ArrayList<>(List.of(java,
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Xmx1g", "-cp", System.getProperty("java.class.path"), mainClass.getName()));
    command.addAll(List.of(args));
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
      Matcher port = line == null ? null
          : Pattern.compile("(?:PORT|Server started on port) (\\d+)")
              .matcher(line);
      if (port == null || !port.matches()) {
        throw new IOException("child JVM did not report its port: " + line);
      }
      return new ChildJvm(process, Integer.parseInt(port.group(1)));
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

  /** SIGTERM, for a child that shuts down in a hook; killed if it has not exited in 10 s. */
  void terminate() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
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
