package io.grpcshm;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.LogRecord;

/** Keeps every record a logger publishes, for tests that check what the transport logged. */
public final class LogCapture extends Handler {
  private final List<LogRecord> records = new CopyOnWriteArrayList<>();

  /** Everything published so far (safe to read while more arrive). */
  public List<LogRecord> records() {
    return records;
  }

  @Override
  public void publish(LogRecord record) {
    records.add(record);
  }

  @Override
  public void flush() {}

  @Override
  public void close() {}
}
