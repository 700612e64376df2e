package io.grpcshm.dsa.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * libc calls only tests need (mmap, mincore, socketpair, ...), through FFM like {@link Libc}.
 * Kept out of the main sources: production code never maps memory or fakes devices.
 */
@SuppressWarnings("restricted")
public final class TestLibc {
  public static final int PROT_READ = 1;
  public static final int PROT_WRITE = 2;
  public static final int MAP_PRIVATE = 2;
  public static final int MAP_ANONYMOUS = 0x20;
  public static final int MAP_NORESERVE = 0x4000;
  public static final int AF_UNIX = 1;
  public static final int SOCK_SEQPACKET = 5;
  public static final int SOCK_CLOEXEC = 0x80000;
  public static final int EPOLL_CLOEXEC = 0x80000;
  private static final int SC_PAGESIZE = 30;

  private static final MethodHandle MMAP;
  private static final MethodHandle MUNMAP;
  private static final MethodHandle MINCORE;
  private static final MethodHandle SOCKETPAIR;
  private static final MethodHandle READ;
  private static final MethodHandle WRITE;
  private static final MethodHandle EPOLL_CREATE1;
  private static final MethodHandle SYSCONF;

  static {
    Linker linker = Linker.nativeLinker();
    SymbolLookup libc = linker.defaultLookup();
    MMAP = linker.downcallHandle(libc.find("mmap").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
            ValueLayout.JAVA_LONG));
    MUNMAP = linker.downcallHandle(libc.find("munmap").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    MINCORE = linker.downcallHandle(libc.find("mincore").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
            ValueLayout.ADDRESS));
    SOCKETPAIR = linker.downcallHandle(libc.find("socketpair").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
            ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    READ = linker.downcallHandle(libc.find("read").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG));
    WRITE = linker.downcallHandle(libc.find("write").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
            ValueLayout.JAVA_LONG));
    EPOLL_CREATE1 = linker.downcallHandle(libc.find("epoll_create1").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    SYSCONF = linker.downcallHandle(libc.find("sysconf").orElseThrow(),
        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
  }

  private TestLibc() {}

  public static long pageSize() {
    try {
      return (long) SYSCONF.invokeExact(SC_PAGESIZE);
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  /** A fresh private anonymous mapping: no page is present until touched. */
  public static long mapAnonymous(long bytes, boolean noReserve) {
    try {
      long a = (long) MMAP.invokeExact(0L, bytes, PROT_READ | PROT_WRITE,
          MAP_PRIVATE | MAP_ANONYMOUS | (noReserve ? MAP_NORESERVE : 0), -1, 0L);
      if (a == -1) {
        throw new AssertionError("mmap of " + bytes + " bytes failed");
      }
      return a;
    } catch (Throwable t) {
      throw t instanceof AssertionError e ? e : new AssertionError(t);
    }
  }

  public static void unmap(long address, long bytes) {
    try {
      if ((int) MUNMAP.invokeExact(address, bytes) != 0) {
        throw new AssertionError("munmap failed");
      }
    } catch (Throwable t) {
      throw t instanceof AssertionError e ? e : new AssertionError(t);
    }
  }

  /** mincore(2): one flag per page, bit 0 set when the page is resident. */
  public static boolean[] resident(long address, long bytes) {
    long page = pageSize();
    int pages = (int) ((bytes + page - 1) / page);
    try (Arena a = Arena.ofConfined()) {
      MemorySegment vec = a.allocate(pages);
      if ((int) MINCORE.invokeExact(address, bytes, vec) != 0) {
        throw new AssertionError("mincore failed");
      }
      boolean[] r = new boolean[pages];
      for (int i = 0; i < pages; i++) {
        r[i] = (vec.get(ValueLayout.JAVA_BYTE, i) & 1) != 0;
      }
      return r;
    } catch (Throwable t) {
      throw t instanceof AssertionError e ? e : new AssertionError(t);
    }
  }

  /** A connected AF_UNIX SOCK_SEQPACKET pair: each write() is one message, like a descriptor. */
  public static int[] socketPair() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment sv = a.allocate(ValueLayout.JAVA_INT, 2);
      if ((int) SOCKETPAIR.invokeExact(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        throw new AssertionError("socketpair failed");
      }
      return new int[] {sv.getAtIndex(ValueLayout.JAVA_INT, 0),
          sv.getAtIndex(ValueLayout.JAVA_INT, 1)};
    } catch (Throwable t) {
      throw t instanceof AssertionError e ? e : new AssertionError(t);
    }
  }

  /** read(2): bytes read, 0 at end of stream, negative on error. */
  public static long read(int fd, MemorySegment buf) {
    try {
      return (long) READ.invokeExact(fd, buf, buf.byteSize());
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  public static long write(int fd, MemorySegment buf) {
    try {
      return (long) WRITE.invokeExact(fd, buf, buf.byteSize());
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  /**
   * An epoll fd: its file has no write method, so write() answers EINVAL exactly as the idxd
   * char device does on kernels without the write() submission path.
   */
  public static int fdWithoutWrite() {
    try {
      int fd = (int) EPOLL_CREATE1.invokeExact(EPOLL_CLOEXEC);
      if (fd < 0) {
        throw new AssertionError("epoll_create1 failed");
      }
      return fd;
    } catch (Throwable t) {
      throw t instanceof AssertionError e ? e : new AssertionError(t);
    }
  }
}
