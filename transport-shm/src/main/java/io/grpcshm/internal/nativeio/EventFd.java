package io.grpcshm.internal.nativeio;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A non-blocking eventfd used as a doorbell: any thread {@link #signal}s it, one thread (an event
 * loop, through epoll) {@link #drain}s it. Only ever our own descriptor: a peer's could be switched
 * back to blocking by that peer (peers are woken with WAKE messages instead).
 *
 * <p>{@link #close} waits for signals in progress: a write to a descriptor number that was
 * closed and reused by another file would corrupt that file.
 */
public final class EventFd implements AutoCloseable {
  private static final int CLOSED = Integer.MIN_VALUE / 2;

  private final int fd;
  private final Arena arena = Arena.ofShared();
  /** The constant 1 every signal writes; shared by all signalling threads (read-only). */
  private final MemorySegment one;
  /** errno scratch for signals; concurrent signals may garble it, and only EAGAIN is expected. */
  private final MemorySegment signalCapture;
  private final MemorySegment drainBuffer;
  private final MemorySegment drainCapture;
  /** Signals in progress; {@link #CLOSED} added once closing. */
  private final AtomicInteger users = new AtomicInteger();

  private EventFd(int fd) {
    this.fd = fd;
    this.one = arena.allocate(ValueLayout.JAVA_LONG);
    one.set(ValueLayout.JAVA_LONG, 0, 1L);
    this.signalCapture = Linux.newCapture(arena);
    this.drainBuffer = arena.allocate(ValueLayout.JAVA_LONG);
    this.drainCapture = Linux.newCapture(arena);
  }

  /** A new doorbell of ours. */
  public static EventFd create() {
    return new EventFd(Linux.eventfd(Linux.EFD_NONBLOCK | Linux.EFD_CLOEXEC));
  }

  public int fd() {
    return fd;
  }

  /** Rings the doorbell; false if it is closed. Never blocks. */
  public boolean signal() {
    if (users.incrementAndGet() < 0) {
      users.decrementAndGet();
      return false;
    }
    try {
      // EAGAIN means the counter is saturated: the reader has a wake-up pending anyway.
      Linux.write(fd, one, 8, signalCapture);
      return true;
    } finally {
      users.decrementAndGet();
    }
  }

  /** Clears pending signals; true if there were any. Called by the one draining thread. */
  public boolean drain() {
    return Linux.read(fd, drainBuffer, 8, drainCapture) == 8;
  }

  /** Closes the descriptor once no signal is in progress. Idempotent. */
  @Override
  public void close() {
    int before = users.getAndAdd(CLOSED);
    if (before < 0) {
      users.addAndGet(-CLOSED); // already closed: undo
      return;
    }
    while (users.get() != CLOSED) {
      Thread.onSpinWait(); // a signal in progress finishes within one write(2)
    }
    Linux.close(fd);
    arena.close();
  }
}
