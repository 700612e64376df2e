package io.grpcshm.policy.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * LLC misses of the calling thread through {@code perf_event_open(2)} via FFM
 * (PERF_TYPE_HARDWARE / PERF_COUNT_HW_CACHE_MISSES, user space only). Most VMs expose no PMU:
 * then {@link #open()} returns null and {@link #lastError()} says why.
 */
@SuppressWarnings("restricted") // FFM downcalls are the point of this class
public final class PerfLlc implements AutoCloseable {
  private static final long SYS_PERF_EVENT_OPEN = 298; // x86-64
  private static final int PERF_TYPE_HARDWARE = 0;
  private static final int PERF_COUNT_HW_CACHE_MISSES = 3;
  private static final int ATTR_SIZE = 128;
  private static volatile String lastError = "not tried";

  private final int fd;
  private final Arena arena;
  private final MemorySegment buf;
  private final MethodHandle read;
  private final MethodHandle close;

  private PerfLlc(int fd, Arena arena, MethodHandle read, MethodHandle close) {
    this.fd = fd;
    this.arena = arena;
    this.buf = arena.allocate(8, 8);
    this.read = read;
    this.close = close;
  }

  public static String lastError() { return lastError; }

  /** Opens a counter for the calling thread, or returns null (see {@link #lastError()}). */
  public static PerfLlc open() {
    String arch = System.getProperty("os.arch");
    if (!"amd64".equals(arch) && !"x86_64".equals(arch)) {
      lastError = "perf_event_open is only wired for x86-64 (os.arch=" + arch + ")";
      return null;
    }
    Arena arena = Arena.ofShared();
    try {
      Linker linker = Linker.nativeLinker();
      var libc = linker.defaultLookup();
      StructLayout capture = Linker.Option.captureStateLayout();
      VarHandle errno = capture.varHandle(MemoryLayout.PathElement.groupElement("errno"));
      MethodHandle syscall = linker.downcallHandle(libc.find("syscall").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
              ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
              ValueLayout.JAVA_LONG),
          Linker.Option.firstVariadicArg(1), Linker.Option.captureCallState("errno"));
      MethodHandle read = linker.downcallHandle(libc.find("read").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
              ValueLayout.JAVA_LONG));
      MethodHandle close = linker.downcallHandle(libc.find("close").orElseThrow(),
          FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
      MemorySegment attr = arena.allocate(ATTR_SIZE, 8);
      attr.set(ValueLayout.JAVA_INT, 0, PERF_TYPE_HARDWARE);
      attr.set(ValueLayout.JAVA_INT, 4, ATTR_SIZE);
      attr.set(ValueLayout.JAVA_LONG, 8, PERF_COUNT_HW_CACHE_MISSES);
      // flags word at offset 40: exclude_kernel (bit 5) | exclude_hv (bit 6); enabled at once.
      attr.set(ValueLayout.JAVA_LONG, 40, (1L << 5) | (1L << 6));
      MemorySegment state = arena.allocate(capture);
      long fd = (long) syscall.invokeExact(state, SYS_PERF_EVENT_OPEN, attr, 0, -1, -1, 0L);
      if (fd < 0) {
        int e = (int) errno.get(state, 0L);
        arena.close();
        lastError = "perf_event_open(HW_CACHE_MISSES) failed: errno " + e
            + switch (e) {
              case 2 -> " (ENOENT: no hardware PMU event, typical in VMs)";
              case 1, 13 -> " (no permission: see kernel.perf_event_paranoid)";
              case 19 -> " (ENODEV: no PMU)";
              default -> "";
            };
        return null;
      }
      PerfLlc p = new PerfLlc((int) fd, arena, read, close);
      if (p.read() < 0) {
        p.close();
        lastError = "perf_event_open succeeded but read() failed";
        return null;
      }
      lastError = "";
      return p;
    } catch (Throwable t) {
      arena.close();
      lastError = "perf_event_open unavailable: " + t;
      return null;
    }
  }

  /** Misses counted so far, or -1. */
  public long read() {
    try {
      long n = (long) read.invokeExact(fd, buf, 8L);
      return n == 8 ? buf.get(ValueLayout.JAVA_LONG, 0) : -1;
    } catch (Throwable t) {
      return -1;
    }
  }

  @Override
  public void close() {
    try {
      int ignored = (int) close.invokeExact(fd);
    } catch (Throwable t) {
      // closing a counter cannot usefully fail
    }
    arena.close();
  }
}
