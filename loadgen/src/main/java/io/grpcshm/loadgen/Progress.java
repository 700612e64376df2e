package io.grpcshm.loadgen;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar on stderr, shown only on a terminal. On JDK 22+ {@code
 * System.console()} is non-null even when redirected, so {@link Console#isTerminal()} decides.
 */
final class Progress implements AutoCloseable {
  private static final int WIDTH = 40;
  private final Runner runner;
  private final Runner.Config config;
  private final PrintStream out = System.err;
  private final Thread thread;
  private volatile boolean closed;

  private Progress(Runner runner, Runner.Config config) {
    this.runner = runner;
    this.config = config;
    this.thread = Thread.ofPlatform().daemon().name("grpc-load-progress").start(this::loop);
  }

  static boolean onTerminal() {
    Console console = System.console();
    return console != null && console.isTerminal();
  }

  /** A bar when forced, or on a terminal unless disabled; otherwise null. */
  static Progress start(Runner runner, Runner.Config config, boolean disabled, boolean forced) {
    return forced || (!disabled && onTerminal()) ? new Progress(runner, config) : null;
  }

  private void loop() {
    while (!closed) {
      draw();
      try {
        Thread.sleep(200);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private void draw() {
    long done = runner.completed();
    double elapsed = runner.elapsedNanos() / 1e9;
    double fraction;
    if (config.total() > 0) {
      fraction = (double) done / config.total();
    } else {
      fraction = elapsed / (config.duration().toNanos() / 1e9);
    }
    if (config.maxDuration() != null) {
      fraction = Math.max(fraction, elapsed / (config.maxDuration().toNanos() / 1e9));
    }
    fraction = Math.min(1, fraction);
    int filled = (int) (fraction * WIDTH);
    out.printf(Locale.ROOT, "\r[%s%s] %3d%%  %d calls  %.1f s ", "=".repeat(filled),
        " ".repeat(WIDTH - filled), (int) (fraction * 100), done, elapsed);
    out.flush();
  }

  @Override
  public void close() {
    closed = true;
    thread.interrupt();
    try {
      thread.join(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    draw();
    out.println();
  }
}
