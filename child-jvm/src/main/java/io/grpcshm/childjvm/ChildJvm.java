package io.grpcshm.childjvm;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A main class of this class path running in a second JVM, so that calls really cross a process
 * boundary. The child reports its port with a line of stdout ({@code PORT <n>} unless {@link
 * Builder#portLine} says otherwise); its other lines are either echoed here with a prefix
 * ({@link Builder#echoOutput}) or kept for {@link #readLine}.
 *
 * <p>Lifetime: {@link #close} closes the child's stdin (children exit on its end-of-file), waits
 * up to 10 s and then kills it; a shutdown hook kills it if this JVM exits first. Every wait is
 * bounded.
 */
public final class ChildJvm implements AutoCloseable {
  /** Overrides the child's class path (surefire's own can be a booter jar). */
  public static final String CLASSPATH_PROPERTY = "grpcshm.child.classpath";
  /** The port line of the test servers: {@code PORT <n>}. */
  public static final Pattern PORT_LINE = Pattern.compile("PORT (\\d+)");
  /** What a child needs for grpc-shm's native calls without warnings. */
  private static final List<String> NATIVE_ACCESS_FLAGS =
      List.of("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow");
  private static final Duration DEFAULT_READY_TIMEOUT = Duration.ofSeconds(60);

  private final String label;
  private final Process process;
  private final Pattern portLine;
  private final boolean echo;
  private final CompletableFuture<Integer> port = new CompletableFuture<>();
  /** Lines after the port line, when not echoed; empty at end of stream. */
  private final BlockingQueue<Optional<String>> lines = new LinkedBlockingQueue<>();
  private boolean ended;
  private final Thread killOnExit;
  private final Thread pump;

  private ChildJvm(String label, Process process, Pattern portLine, boolean echo) {
    this.label = label;
    this.process = process;
    this.portLine = portLine;
    this.echo = echo;
    this.killOnExit = new Thread(process::destroyForcibly, "kill-" + label);
    Runtime.getRuntime().addShutdownHook(killOnExit);
    this.pump = new Thread(this::pumpOutput, "output-" + label);
    pump.setDaemon(true);
    pump.start();
  }

  /** Starts {@code mainClass} with {@code -Xmx512m} and waits for its port line. */
  public static ChildJvm start(Class<?> mainClass) throws IOException {
    return start(mainClass, "-Xmx512m");
  }

  /** Starts {@code mainClass} with one JVM option and program arguments; waits for its port. */
  public static ChildJvm start(Class<?> mainClass, String jvmOption, String... args)
      throws IOException {
    return of(mainClass).jvmOptions(jvmOption).args(args).startReady(DEFAULT_READY_TIMEOUT);
  }

  /**
   * As {@link #start(Class, String, String...)}, the JVM started by {@code prefix} (e.g.
   * {@code ip netns exec NAME}, which execs it: the process is the JVM itself).
   */
  public static ChildJvm start(List<String> prefix, Class<?> mainClass, String jvmOption,
      String... args) throws IOException {
    return of(mainClass).commandPrefix(prefix).jvmOptions(jvmOption).args(args)
        .startReady(DEFAULT_READY_TIMEOUT);
  }

  /**
   * The child's side of {@link #PORT_LINE}: prints {@code PORT <port>}, serves until the parent
   * closes this process's stdin (or dies), then calls {@code stop} and exits with status 0. A
   * {@code stop} that waits (bounded) for the server to terminate lets its cleanup finish first.
   */
  public static void reportPortAndServe(int port, Callable<?> stop) throws Exception {
    System.out.println("PORT " + port);
    System.out.flush();
    while (System.in.read() != -1) {
      // Input is not used: its end is the signal.
    }
    stop.call();
    System.exit(0);
  }

  /** A child running {@code mainClass}, to configure. */
  public static Builder of(Class<?> mainClass) {
    return new Builder(mainClass);
  }

  /** How to start a child. */
  public static final class Builder {
    private final Class<?> mainClass;
    private String label;
    private final List<String> prefix = new ArrayList<>();
    private final List<String> jvmOptions = new ArrayList<>();
    private final List<String> args = new ArrayList<>();
    private boolean inheritJvmFlags;
    private Pattern portLine = PORT_LINE;
    private boolean echo;

    private Builder(Class<?> mainClass) {
      this.mainClass = mainClass;
      this.label = mainClass.getSimpleName();
    }

    /** The name in echoed lines, thread names and errors (default: the main class's name). */
    public Builder label(String label) {
      this.label = label;
      return this;
    }

    /** A command that execs the JVM, such as {@code ip netns exec NAME}. */
    public Builder commandPrefix(List<String> command) {
      prefix.addAll(command);
      return this;
    }

    /** JVM options after the defaults (native access, or this JVM's flags). */
    public Builder jvmOptions(String... options) {
      jvmOptions.addAll(List.of(options));
      return this;
    }

    /**
     * Gives the child this JVM's flags (heap, GC, native access), less agents and debuggers,
     * so a benchmark's server runs as its client does.
     */
    public Builder inheritJvmFlags() {
      inheritJvmFlags = true;
      return this;
    }

    public Builder args(String... programArgs) {
      args.addAll(List.of(programArgs));
      return this;
    }

    /** The line reporting the port; its first group is the port (found anywhere in a line). */
    public Builder portLine(Pattern pattern) {
      portLine = pattern;
      return this;
    }

    /** Prints the child's stdout and stderr here, each line prefixed by the label. */
    public Builder echoOutput() {
      echo = true;
      return this;
    }

    /** Starts the child without waiting for it; see {@link ChildJvm#awaitPort}. */
    public ChildJvm start() throws IOException {
      List<String> command = new ArrayList<>(prefix);
      command.add(javaBinary());
      command.addAll(inheritJvmFlags ? inheritedJvmFlags() : NATIVE_ACCESS_FLAGS);
      command.addAll(jvmOptions);
      command.add("-cp");
      command.add(classPath());
      command.add(mainClass.getName());
      command.addAll(args);
      // stdin stays a pipe (the default): its end-of-file is the child's signal to exit.
      ProcessBuilder builder = new ProcessBuilder(command);
      if (echo) {
        builder.redirectErrorStream(true);
      } else {
        builder.redirectError(ProcessBuilder.Redirect.INHERIT);
      }
      return new ChildJvm(label, builder.start(), portLine, echo);
    }

    /** Starts the child and waits for its port line; kills it if none comes in time. */
    public ChildJvm startReady(Duration timeout) throws IOException {
      ChildJvm child = start();
      try {
        child.awaitPort(timeout);
        return child;
      } catch (IOException | RuntimeException e) {
        child.kill();
        throw e;
      } catch (InterruptedException e) {
        child.kill();
        Thread.currentThread().interrupt();
        throw new IOException(child.label + ": interrupted while starting", e);
      }
    }
  }

  /** Waits for the child's port line. */
  public int awaitPort(Duration timeout) throws IOException, InterruptedException {
    try {
      return port.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new IOException(label + " did not report its port within " + timeout);
    } catch (ExecutionException e) {
      throw new IOException(label + ": " + e.getCause().getMessage(), e.getCause());
    }
  }

  /** The port the child reported; only after {@link #awaitPort} or a ready start. */
  public int port() {
    if (!port.isDone() || port.isCompletedExceptionally()) {
      throw new IllegalStateException(label + " has not reported a port");
    }
    return port.join();
  }

  /** Sends one line to the child's stdin. */
  public void send(String line) throws IOException {
    process.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
    process.getOutputStream().flush();
  }

  /**
   * The child's next line of stdout after its port line, or null at its end (output not
   * echoed only).
   *
   * @throws TimeoutException if no line comes within {@code seconds}
   */
  public String readLine(int seconds) throws InterruptedException, TimeoutException {
    if (echo) {
      throw new IllegalStateException(label + "'s output is echoed, not kept");
    }
    if (ended) {
      return null;
    }
    Optional<String> line = lines.poll(seconds, TimeUnit.SECONDS);
    if (line == null) {
      throw new TimeoutException(label + " wrote no line within " + seconds + " s");
    }
    ended = line.isEmpty();
    return line.orElse(null);
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** CPU time the child has used so far (user + system, clock-tick resolution). */
  public Duration cpuTime() {
    return process.toHandle().info().totalCpuDuration().orElse(Duration.ZERO);
  }

  /** SIGKILL, as a crash would. */
  public void kill() {
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    removeHook();
  }

  /** SIGTERM, for a child that shuts down in a hook; killed if it has not exited in 10 s. */
  public void terminate() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
    removeHook();
  }

  /**
   * Closes the child's stdin so it exits by itself; kills it if it has not within 10 s.
   * Returns the exit code (negative if it had to be killed).
   */
  public int stop() throws InterruptedException {
    try {
      process.getOutputStream().close();
    } catch (IOException e) {
      // Already closed: the child sees end-of-file either way.
    }
    try {
      if (process.waitFor(10, TimeUnit.SECONDS)) {
        pump.join(2_000); // its last lines reach our output before the caller goes on
        return process.exitValue();
      }
      process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      return -1;
    } finally {
      removeHook();
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

  private void removeHook() {
    try {
      Runtime.getRuntime().removeShutdownHook(killOnExit);
    } catch (IllegalStateException e) {
      // Already shutting down: the hook runs, harmlessly.
    }
  }

  private void pumpOutput() {
    PrintStream console = System.out;
    try (BufferedReader out = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = out.readLine()) != null) {
        Matcher m = port.isDone() ? null : portLine.matcher(line);
        if (echo) {
          console.println("  [" + label + "] " + line);
        }
        if (m != null && m.find()) {
          port.complete(Integer.parseInt(m.group(1)));
        } else if (!echo) {
          lines.add(Optional.of(line));
        }
      }
    } catch (IOException e) {
      // The stream closes when the child exits.
    }
    lines.add(Optional.empty());
    port.completeExceptionally(new IOException("exited before reporting its port"));
  }

  private static String javaBinary() {
    return ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
  }

  private static String classPath() {
    String explicit = System.getProperty(CLASSPATH_PROPERTY);
    return explicit != null && !explicit.isBlank()
        ? explicit : System.getProperty("java.class.path");
  }

  private static List<String> inheritedJvmFlags() {
    return ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
        .filter(f -> !f.startsWith("-javaagent") && !f.startsWith("-agentlib")
            && !f.startsWith("-agentpath") && !f.startsWith("-Xrunjdwp")
            && !f.startsWith("-Djava.class.path") && !f.startsWith("-D" + CLASSPATH_PROPERTY))
        .toList();
  }
}
