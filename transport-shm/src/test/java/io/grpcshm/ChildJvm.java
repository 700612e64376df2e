package io.grpcshm;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** A second JVM for cross-process tests; bounded start, killed on close. */
public final class ChildJvm implements AutoCloseable {
  private final Process process;
  private final int port;
  private final BufferedReader out;

  private ChildJvm(Process process, int port, BufferedReader out) {
    this.process = process;
    this.port = port;
    this.out = out;
  }

  public static ChildJvm start(Class<?> mainClass) throws IOException {
    return start(mainClass, "-Xmx512m");
  }

  /**
   * Starts {@code mainClass} with one JVM option and program arguments; it must print
   * {@code PORT n} (any n) on its first line of stdout once it is ready.
   */
  public static ChildJvm start(Class<?> mainClass, String jvmOption, String... args)
      throws IOException {
    return start(List.of(), mainClass, jvmOption, args);
  }

  /**
   * As {@link #start(Class, String, String...)}, the JVM started by {@code prefix} (e.g.
   * {@code ip netns exec NAME}, which execs it: the process is the JVM itself).
   */
  public static ChildJvm start(List<String> prefix, Class<?> mainClass, String jvmOption,
      String... args) throws IOException {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new java.util.ArrayList<>(prefix);
    command.addAll(List.of(java,
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", jvmOption,
        "-cp", System.getProperty("java.class.path"), mainClass.getName()));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command)
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    BufferedReader out = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    try {
      String line = CompletableFuture.supplyAsync(() -> {
        try {
          return out.readLine();
        } catch (IOException e) {
          return null;
        }
      }).get(60, TimeUnit.SECONDS);
      if (line == null || !line.startsWith("PORT ")) {
        throw new IOException("child did not report a port: " + line);
      }
      return new ChildJvm(process, Integer.parseInt(line.substring(5).trim()), out);
    } catch (Exception e) {
      process.destroyForcibly();
      throw new IOException("child JVM failed to start", e);
    }
  }

  /** Sends one line to the child's stdin. */
  public void send(String line) throws IOException {
    process.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
    process.getOutputStream().flush();
  }

  /** The child's next line of stdout, or null at its end; bounded by {@code seconds}. */
  public String readLine(int seconds) throws Exception {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return out.readLine();
      } catch (IOException e) {
        return null;
      }
    }).get(seconds, TimeUnit.SECONDS);
  }

  public int port() {
    return port;
  }

  /** SIGKILL, like a crash. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public long pid() {
    return process.pid();
  }

  @Override
  public void close() throws InterruptedException {
    try {
      process.getOutputStream().close();
    } catch (IOException ignored) {
      // already gone
    }
    if (!process.waitFor(5, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
