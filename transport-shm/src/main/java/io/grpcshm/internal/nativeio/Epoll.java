package io.grpcshm.internal.nativeio;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * An epoll instance for one event loop thread. Registrations may come from any thread; {@link
 * #await} and the event accessors only from the loop thread.
 *
 * <p>{@code struct epoll_event} is packed on x86-64: {@code u32 events} at 0, {@code u64 data}
 * at 4, 12 bytes.
 */
public final class Epoll implements AutoCloseable {
  public static final int IN = 0x1;
  public static final int ERR = 0x8;
  public static final int HUP = 0x10;
  public static final int RDHUP = 0x2000;
  private static final long EVENT_SIZE = 12;
  private static final long EVENTS_OFFSET = 0;
  private static final long DATA_OFFSET = 4;

  private final int epfd;
  private final int capacity;
  private final Arena arena = Arena.ofShared();
  private final MemorySegment events;
  private final MemorySegment waitCapture;

  public Epoll(int capacity) {
    this.epfd = Linux.epollCreate();
    this.capacity = capacity;
    this.events = arena.allocate(EVENT_SIZE * capacity, 8);
    this.waitCapture = Linux.newCapture(arena);
  }

  /** Watches {@code fd} for {@code mask}; events carry {@code data}. */
  public void add(int fd, int mask, long data) {
    control(Linux.EPOLL_CTL_ADD, fd, mask, data);
  }

  /** Stops watching {@code fd} (before it is closed, or epoll would keep a stale entry). */
  public void remove(int fd) {
    control(Linux.EPOLL_CTL_DEL, fd, 0, 0);
  }

  private void control(int op, int fd, int mask, long data) {
    try (Arena tmp = Arena.ofConfined()) {
      MemorySegment event = tmp.allocate(EVENT_SIZE, 8);
      event.set(ValueLayout.JAVA_INT_UNALIGNED, EVENTS_OFFSET, mask);
      event.set(ValueLayout.JAVA_LONG_UNALIGNED, DATA_OFFSET, data);
      int rc = Linux.epollCtl(epfd, op, fd, event, Linux.newCapture(tmp));
      if (rc != 0) {
        throw new NativeException("epoll_ctl", -rc);
      }
    }
  }

  /**
   * Waits for events (at most {@code timeoutMillis}, -1 forever); returns how many are ready
   * (0 on timeout or a signal).
   */
  public int await(int timeoutMillis) {
    int n = Linux.epollWait(epfd, events, capacity, timeoutMillis, waitCapture);
    if (n < 0) {
      if (n == -Linux.EINTR) {
        return 0;
      }
      throw new NativeException("epoll_wait", -n);
    }
    return n;
  }

  public int mask(int i) {
    return events.get(ValueLayout.JAVA_INT_UNALIGNED, EVENT_SIZE * i + EVENTS_OFFSET);
  }

  public long data(int i) {
    return events.get(ValueLayout.JAVA_LONG_UNALIGNED, EVENT_SIZE * i + DATA_OFFSET);
  }

  @Override
  public void close() {
    Linux.close(epfd);
    arena.close();
  }
}
