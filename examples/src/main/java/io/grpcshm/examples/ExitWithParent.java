package io.grpcshm.examples;

import io.grpcshm.childjvm.ChildJvm;
import java.io.IOException;
import java.io.InputStream;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.regex.Pattern;
import picocli.CommandLine.Option;

/**
 * The servers of the demos and benchmarks in a second JVM ({@link #startServer}). A server
 * started with {@link #FLAG} exits when its standard input reaches end-of-file. The parent holds
 * the write end of that pipe, and the kernel closes it however the parent ends (normal exit,
 * exception, kill -9), so no orphaned server outlives a demo, a benchmark or a test.
 */
final class ExitWithParent {
  static final String FLAG = "--exit-on-stdin-eof";
  private static final Pattern LISTENING = Pattern.compile("listening on port (\\d+)");

  private ExitWithParent() {}

  /**
   * Starts a server main of this module in a second JVM with this JVM's flags, echoing its
   * output under {@code label}; it exits when the returned child is closed or this JVM ends.
   * The server prints "listening on port N" when ready ({@link ChildJvm#awaitPort}).
   */
  static ChildJvm startServer(String label, Class<?> mainClass, String... args)
      throws IOException {
    return startServer(label, mainClass, List.of(), args);
  }

  /** As {@link #startServer(String, Class, String...)}, with JVM options after the inherited. */
  static ChildJvm startServer(String label, Class<?> mainClass, List<String> jvmOptions,
      String... args) throws IOException {
    return ChildJvm.of(mainClass).label(label).inheritJvmFlags()
        .jvmOptions(jvmOptions.toArray(String[]::new)).args(args).args(FLAG)
        .portLine(LISTENING).echoOutput().start();
  }

  /** The hidden {@link #FLAG} option of the server mains (a picocli mixin). */
  static final class Flag {
    @Option(names = FLAG, hidden = true, description = "exit when stdin reaches end-of-file")
    boolean requested;
  }

  /** Starts a daemon thread that runs {@code cleanup} and exits the JVM once stdin closes. */
  static void exitWhenStdinCloses(Runnable cleanup) {
    Thread watcher = new Thread(() -> {
      drain(System.in);
      haltLater(5_000); // a cleanup or shutdown hook that hangs must not keep the child alive
      // Report first: once cleanup stops the server, main() may return and end the JVM.
      System.out.println(gcSummary());
      System.out.flush();
      try {
        cleanup.run();
      } finally {
        System.exit(0);
      }
    }, "exit-with-parent");
    watcher.setDaemon(true);
    watcher.start();
  }

  private static void drain(InputStream in) {
    byte[] sink = new byte[256];
    try {
      while (in.read(sink) >= 0) {
        // The parent never writes; anything it does write is ignored.
      }
    } catch (IOException e) {
      // A broken pipe means the same thing as EOF: the parent is gone.
    }
  }

  private static void haltLater(long millis) {
    Thread halter = new Thread(() -> {
      try {
        Thread.sleep(millis);
      } catch (InterruptedException e) {
        return;
      }
      Runtime.getRuntime().halt(3);
    }, "exit-with-parent-halt");
    halter.setDaemon(true);
    halter.start();
  }

  /**
   * Serves until the JVM is stopped (shutdown hook named {@code hookName}) or, when the parent
   * asked for it ({@link #FLAG}), until the parent's end of stdin closes.
   */
  static void serveUntilStopped(io.grpc.Server server, Flag flag, String hookName)
      throws InterruptedException {
    Runnable stop = () -> {
      try {
        server.shutdownNow().awaitTermination(3, java.util.concurrent.TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    };
    if (flag.requested) {
      exitWhenStdinCloses(stop);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(stop, hookName));
    server.awaitTermination();
  }

  /** One line with this JVM's GC totals; the parent prints it next to its own figures. */
  static String gcSummary() {
    long count = 0;
    long millis = 0;
    for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
      count += Math.max(0, gc.getCollectionCount());
      millis += Math.max(0, gc.getCollectionTime());
    }
    return "exiting: " + count + " GC events, " + millis + " ms in GC (incl. concurrent)";
  }
}
