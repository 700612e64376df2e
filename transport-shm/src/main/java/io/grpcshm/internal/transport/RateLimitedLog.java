package io.grpcshm.internal.transport;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A log that writes at most one line per key and interval, so a peer that hits a limit a
 * million times a second costs one line; the next line says how many were suppressed.
 */
public final class RateLimitedLog {
  private final Logger logger;
  private final long intervalNanos;
  private final ConcurrentHashMap<String, Window> windows = new ConcurrentHashMap<>();

  private static final class Window {
    volatile long nextNanos;
    final AtomicLong suppressed = new AtomicLong();

    Window(long nextNanos) {
      this.nextNanos = nextNanos;
    }
  }

  public RateLimitedLog(Logger logger, long intervalNanos) {
    this.logger = logger;
    this.intervalNanos = intervalNanos;
  }

  /** Logs {@code message} unless a line with this key went out less than an interval ago. */
  public void log(Level level, String key, Supplier<String> message) {
    if (!logger.isLoggable(level)) {
      return;
    }
    long now = System.nanoTime();
    Window w = windows.get(key);
    if (w == null) {
      Window fresh = new Window(now + intervalNanos);
      w = windows.putIfAbsent(key, fresh);
      if (w == null) {
        logger.log(level, message.get());
        return;
      }
    }
    long next = w.nextNanos;
    if (now - next < 0) {
      w.suppressed.incrementAndGet();
      return;
    }
    synchronized (w) {
      if (w.nextNanos != next) {
        w.suppressed.incrementAndGet();
        return; // another thread took this slot
      }
      w.nextNanos = now + intervalNanos;
    }
    long skipped = w.suppressed.getAndSet(0);
    logger.log(level, skipped == 0 ? message.get()
        : message.get() + " (" + skipped + " similar events not logged)");
  }
}
