package io.grpcshm.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A server in a second JVM, so that calls really cross a process boundary. It runs on the same
 * java binary and class path as this process, with this process's JVM flags, and prints
 * "listening on port N" when ready. Its output is echoed here with a prefix.
 *
 * <p>Lifetime: the child exits when its stdin closes ({@link ExitWithParent}), which happens
 * when {@link #close} is called or when this process dies in any way; {@code close} then waits a
 * bounded time and kills it if needed.
 */
final class ChildJvm implements AutoCloseable {
  /** Overrides the class path (surefire's own is a booter jar, see the module's pom). */
  static final String CLASSPATH_PROPERTY = "examples.child.classpath";
  private static final Pattern LISTENING = Pattern.compile("listening on port (\\d+)");

  private final String label;
  private final Process process;
  private final CompletableFuture<Integer> port = new CompletableFuture<>();
  private final Thread killOnExit;
  private final Thread pump;

  private ChildJvm(String label, Process process) {
    this.label = label;
    this.process = process;
    this.killOnExit = new Thread(process::destroyForcibly, "kill-" + label);
    Runtime.getRuntime().addShutdownHook(killOnExit);
    this.pump = new Thread(this::pumpOutput, "output-" + label);
    pump.setDaemon(true);
    pump.start();
  }

  /** Starts {@code mainClass} with {@code args} (plus {@link ExitWithParent#FLAG}). */
  static ChildJvm start(String label, Class<?> mainClass, String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(javaBinary());
    command.addAll(inheritedJvmFlags());
    command.add("-cp");
    command.add(classPath());
    command.add(mainClass.getName());
    command.addAll(List.of(args));
    command.add(ExitWithParent.FLAG);
    // stdin stays a pipe (the default): its EOF is the child's signal to exit.
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    return new ChildJvm(label, process);
  }

  /** Waits for the child's "listening on port N" line. */
  int awaitPort(Duration timeout) throws IOException, InterruptedException {
    try {
      return port.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new IOException(label + " did not report its port within " + timeout);
    } catch (ExecutionException e) {
      throw new IOException(label + ": " + e.getCause().getMessage(), e.getCause());
    }
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process.isAlive();
  }

  /** CPU time the child has used so far (user + system, clock-tick resolution). */
  Duration cpuTime() {
    return process.toHandle().info().totalCpuDuration().orElse(Duration.ZERO);
  }

  /**
   * Closes the child's stdin so it exits by itself; kills it if it has not within 10 s.
   * Returns the exit code (negative if it had to be killed).
   */
  int stop() throws InterruptedException {
    try {
      process.getOutputStream().close();
    } catch (IOException e) {
      // Already closed: the child sees EOF either way.
    }
    try {
      if (process.waitFor(10, TimeUnit.SECONDS)) {
        pump.join(2_000); // let its last lines reach our output before we go on
        return process.exitValue();
      }
      process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      return -1;
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(killOnExit);
      } catch (IllegalStateException e) {
        // Already shutting down: the hook will run, harmlessly.
      }
    }
  }

  /** {@link #stop}, for try-with-resources; an interrupt kills the child at once. */
  @Override
  public void close() {
    try {
      stop();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  private void pumpOutput() {
    try (BufferedReader out = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = out.readLine()) != null) {
        System.out.println("  [" + label + "] " + line);
        Matcher m = LISTENING.matcher(line);
        if (!port.isDone() && m.find()) {
          port.complete(Integer.parseInt(m.group(1)));
        }
      }
    } catch (IOException e) {
      // The stream closes when the child exits.
    }
    port.completeExceptionally(new IOException("exited before reporting its port"));
  }

  private static String javaBinary() {
    return ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
  }

  private static String classPath() {
    String explicit = System.getProperty(CLASSPATH_PROPERTY);
    return explicit != null && !explicit.isBlank() ? explicit : System.getProperty("java.class.path");
  }

  /** This JVM's flags (heap, GC, native access), minus agents and debuggers that cannot be shared. */
  private static List<String> inheritedJvmFlags() {
    return ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(f -> !f.startsWith("-javaagent") && !f.startsWith("-agentlib")
            && !f.startsWith("-agentpath") && !f.startsWith("-Xrunjdwp")
            && !f.startsWith("-Djava.class.path") && !f.startsWith("-D" + CLASSPATH_PROPERTY))
        .toList();
  }
}
