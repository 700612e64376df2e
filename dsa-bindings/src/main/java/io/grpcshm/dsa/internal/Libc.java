package io.grpcshm.dsa.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The few libc calls we need (open, write, close, poll, prctl, strerror), bound through FFM. If
 * binding fails (non-Linux, native access denied) {@link #available()} is false and {@link
 * #unavailableReason()} says why; callers degrade instead of crashing.
 */
@SuppressWarnings("restricted") // FFM downcalls are the point of this class
public final class Libc {
  private static final Logger LOG = Logger.getLogger(Libc.class.getName());

  public static final int O_RDWR = 2;
  public static final int O_CLOEXEC = 0x80000;
  public static final int EPERM = 1;
  public static final int ENOENT = 2;
  public static final int EAGAIN = 11;
  public static final int EACCES = 13;
  public static final int EBUSY = 16;
  public static final int ENODEV = 19;
  public static final int EINVAL = 22;
  public static final int ENOSPC = 28;
  public static final int EOPNOTSUPP = 95;
  public static final short POLLIN = 0x1;
  public static final int PR_SET_TIMERSLACK = 29;
  public static final int PR_GET_TIMERSLACK = 30;

  private static final MethodHandle OPEN;
  private static final MethodHandle WRITE;
  private static final MethodHandle CLOSE;
  private static final MethodHandle POLL;
  private static final MethodHandle PRCTL;
  private static final MethodHandle STRERROR;
  private static final StructLayout CAPTURE;
  private static final VarHandle ERRNO;
  private static final String REASON;

  static {
    MethodHandle open = null, write = null, close = null, poll = null, prctl = null;
    MethodHandle strerror = null;
    StructLayout capture = null;
    VarHandle errno = null;
    String reason = null;
    try {
      Linker linker = Linker.nativeLinker();
      SymbolLookup libc = linker.defaultLookup();
      Linker.Option errnoOpt = Linker.Option.captureCallState("errno");
      capture = Linker.Option.captureStateLayout();
      errno = capture.varHandle(MemoryLayout.PathElement.groupElement("errno"));
      open = linker.downcallHandle(libc.find("open").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
              ValueLayout.JAVA_INT),
          errnoOpt, Linker.Option.firstVariadicArg(2));
      write = linker.downcallHandle(libc.find("write").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
              ValueLayout.JAVA_LONG), errnoOpt);
      close = linker.downcallHandle(libc.find("close").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
      // int poll(struct pollfd *fds, nfds_t nfds, int timeout)
      poll = linker.downcallHandle(libc.find("poll").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
              ValueLayout.JAVA_INT), errnoOpt);
      // int prctl(int option, ...): variadic after the first argument.
      prctl = linker.downcallHandle(libc.find("prctl").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
              ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
          errnoOpt, Linker.Option.firstVariadicArg(1));
      strerror = linker.downcallHandle(libc.find("strerror").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    } catch (Throwable t) {
      reason = "libc binding through FFM failed: " + t;
      LOG.log(Level.WARNING, reason, t);
    }
    OPEN = open;
    WRITE = write;
    CLOSE = close;
    POLL = poll;
    PRCTL = prctl;
    STRERROR = strerror;
    CAPTURE = capture;
    ERRNO = errno;
    REASON = reason;
  }

  private Libc() {}

  public static boolean available() { return REASON == null; }

  public static String unavailableReason() { return REASON == null ? "" : REASON; }

  private static void require() {
    if (REASON != null) {
      throw new IllegalStateException(REASON);
    }
  }

  /** A segment for the errno capture; one per caller (not thread-safe to share). */
  public static MemorySegment newErrnoSlot(Arena arena) {
    require();
    return arena.allocate(CAPTURE);
  }

  public static int errno(MemorySegment slot) { return (int) ERRNO.get(slot, 0L); }

  /** open(2); returns fd, or -errno. */
  public static int open(String path, int flags) {
    require();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment slot = a.allocate(CAPTURE);
      int fd = (int) OPEN.invokeExact(slot, a.allocateFrom(path), flags, 0);
      return fd >= 0 ? fd : -errno(slot);
    } catch (Throwable t) {
      throw new IllegalStateException("open(" + path + ") failed in FFM", t);
    }
  }

  /** write(2); returns bytes written, or -errno. {@code errnoSlot} must be caller-confined. */
  public static long write(MemorySegment errnoSlot, int fd, MemorySegment buf, long len) {
    try {
      long n = (long) WRITE.invokeExact(errnoSlot, fd, buf, len);
      return n >= 0 ? n : -errno(errnoSlot);
    } catch (Throwable t) {
      throw new IllegalStateException("write failed in FFM", t);
    }
  }

  public static int close(int fd) {
    require();
    try {
      return (int) CLOSE.invokeExact(fd);
    } catch (Throwable t) {
      throw new IllegalStateException("close failed in FFM", t);
    }
  }

  /** struct pollfd { int fd; short events; short revents; }. */
  private static final long POLLFD_FD = 0;
  private static final long POLLFD_EVENTS = 4;
  private static final long POLLFD_REVENTS = 6;
  private static final long POLLFD_SIZE = 8;

  /** poll(2) one fd without waiting; returns its revents, or -errno. */
  public static int pollNow(int fd, short events) {
    require();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment slot = a.allocate(CAPTURE);
      MemorySegment pfd = a.allocate(POLLFD_SIZE, 4);
      pfd.set(ValueLayout.JAVA_INT, POLLFD_FD, fd);
      pfd.set(ValueLayout.JAVA_SHORT, POLLFD_EVENTS, events);
      int r = (int) POLL.invokeExact(slot, pfd, 1L, 0);
      return r < 0 ? -errno(slot) : pfd.get(ValueLayout.JAVA_SHORT, POLLFD_REVENTS) & 0xFFFF;
    } catch (Throwable t) {
      throw new IllegalStateException("poll failed in FFM", t);
    }
  }

  /** prctl(option, arg2, 0, 0, 0); returns the result, or -errno. */
  public static long prctl(int option, long arg2) {
    require();
    try (Arena a = Arena.ofConfined()) {
      MemorySegment slot = a.allocate(CAPTURE);
      int r = (int) PRCTL.invokeExact(slot, option, arg2, 0L, 0L, 0L);
      return r >= 0 ? r : -errno(slot);
    } catch (Throwable t) {
      throw new IllegalStateException("prctl failed in FFM", t);
    }
  }

  public static String strerror(int errno) {
    if (REASON != null) {
      return "errno " + errno;
    }
    try {
      MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
      return s.reinterpret(256).getString(0) + " (errno " + errno + ")";
    } catch (Throwable t) {
      return "errno " + errno;
    }
  }
}
