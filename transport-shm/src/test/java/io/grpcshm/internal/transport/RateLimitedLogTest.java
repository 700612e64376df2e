package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

class RateLimitedLogTest {
  @Test
  void oneLinePerKeyPerIntervalWithTheSuppressedCount() {
    Logger logger = Logger.getAnonymousLogger();
    logger.setUseParentHandlers(false);
    List<LogRecord> lines = new ArrayList<>();
    logger.addHandler(new Handler() {
      @Override
      public void publish(LogRecord r) {
        lines.add(r);
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    });
    AtomicLong now = new AtomicLong(1_000);
    AtomicInteger built = new AtomicInteger();
    RateLimitedLog log = new RateLimitedLog(logger, 100, now::get);

    log.log(Level.WARNING, "a", () -> "a" + built.incrementAndGet());
    for (int i = 0; i < 1000; i++) {
      log.log(Level.WARNING, "a", () -> "a" + built.incrementAndGet());
    }
    log.log(Level.WARNING, "b", () -> "b");
    assertEquals(List.of("a1", "b"), lines.stream().map(LogRecord::getMessage).toList());
    assertEquals(1, built.get(), "suppressed messages are never built");

    now.addAndGet(99);
    log.log(Level.WARNING, "a", () -> "late");
    assertEquals(2, lines.size());
    now.addAndGet(1);
    log.log(Level.WARNING, "a", () -> "again");
    assertEquals("again (1001 more like this since the last report)",
        lines.get(2).getMessage());
    assertEquals(Level.WARNING, lines.get(2).getLevel());
    assertNull(lines.get(2).getThrown());
    now.addAndGet(100);
    log.log(Level.INFO, "a", () -> "quiet period");
    assertEquals("quiet period", lines.get(3).getMessage());

    // flush: the count of what was suppressed since, once; nothing when nothing was.
    log.log(Level.INFO, "a", () -> "suppressed");
    log.log(Level.INFO, "a", () -> "suppressed");
    log.flush(Level.INFO, "a", "kind a");
    assertEquals("kind a: 2 more since the previous report", lines.get(4).getMessage());
    log.flush(Level.INFO, "a", "kind a");
    log.flush(Level.INFO, "never", "kind never");
    assertEquals(5, lines.size());
    lines.remove(4);

    logger.setLevel(Level.SEVERE);
    now.addAndGet(1000);
    log.log(Level.WARNING, "a", () -> {
      throw new AssertionError("not built when not loggable");
    });
    assertEquals(4, lines.size());
  }
}
