package io.grpcshm.internal.transport;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A log for events a peer can cause at will (a refused stream, a malformed header): at most one
 * line per key per interval, never a stack trace. Events inside the interval are only counted;
 * the next line that is written says how many were suppressed since the previous one.
 *
 * <p>Keys MUST come from a small fixed set chosen by the code (e.g. "stream-limit"), never from
 * peer data: one entry is kept per key for the life of the log. Thread-safe.
 */
final class RateLimitedLog {
  private final Logger logger;
  private final long intervalNanos;
  private final LongSupplier clock;
  private final Map<String, Slot> slots = new ConcurrentHashMap<>();

  private static final class Slot {
    boolean logged;
    long lastNanos;
    long suppressed;
  }

  public RateLimitedLog(Logger logger, long intervalNanos) {
    this(logger, intervalNanos, System::nanoTime);
  }

  RateLimitedLog(Logger logger, long intervalNanos, LongSupplier clock) {
    if (intervalNanos < 0) {
      throw new IllegalArgumentException("interval must not be negative: " + intervalNanos);
    }
    this.logger = logger;
    this.intervalNanos = intervalNanos;
    this.clock = clock;
  }

  /**
   * Logs {@code message} at {@code level} unless a line for {@code key} was written less than
   * the interval ago; the message is only built when it is written.
   */
  public void log(Level level, String key, Supplier<String> message) {
    if (!logger.isLoggable(level)) {
      return;
    }
    long suppressed;
    Slot slot = slots.computeIfAbsent(key, k -> new Slot());
    synchronized (slot) {
      long now = clock.getAsLong();
      if (slot.logged && now - slot.lastNanos < intervalNanos) {
        slot.suppressed++;
        return;
      }
      slot.logged = true;
      slot.lastNanos = now;
      suppressed = slot.suppressed;
      slot.suppressed = 0;
    }
    String line = message.get();
    if (suppressed > 0) {
      line += " (" + suppressed + " more like this since the last report)";
    }
    logger.logp(level, logger.getName(), null, line); // the source is the logger's owner
  }

  /**
   * Writes how many events of {@code key} were suppressed since its last line, if any (for a
   * component that stops: nothing would report them later).
   */
  public void flush(Level level, String key, String prefix) {
    Slot slot = slots.get(key);
    if (slot == null) {
      return;
    }
    long suppressed;
    synchronized (slot) {
      suppressed = slot.suppressed;
      slot.suppressed = 0;
    }
    if (suppressed > 0 && logger.isLoggable(level)) {
      logger.logp(level, logger.getName(), null,
          prefix + ": " + suppressed + " more since the previous report");
    }
  }
}
