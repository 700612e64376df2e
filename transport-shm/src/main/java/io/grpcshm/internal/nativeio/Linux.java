package io.grpcshm.internal.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The Linux system calls the transport needs, bound through {@code java.lang.foreign}.
 *
 * <p>Every call that can fail captures {@code errno} and throws {@link NativeException} with the
 * call's name, so callers never inspect raw return codes. Constants are the x86_64/aarch64 Linux
 * values; the struct layouts (msghdr, epoll_event) are x86_64 Linux.
 */
public final class Linux {
  private Linux() {}

  public static final int AF_UNIX = 1;
  public static final int SOCK_SEQPACKET = 5;
  public static final int SOCK_CLOEXEC = 0x80000;
  public static final int SOCK_NONBLOCK = 0x800;
  private static final int F_GETFL = 3;
  private static final int F_SETFL = 4;
  private static final int O_NONBLOCK = 0x800;
  public static final int SOL_SOCKET = 1;
  public static final int SO_PEERCRED = 17;
  public static final int SCM_RIGHTS = 1;
  public static final int MSG_NOSIGNAL = 0x4000;
  public static final int MSG_DONTWAIT = 0x40;
  public static final int MSG_CTRUNC = 0x8;
  public static final int MSG_CMSG_CLOEXEC = 0x40000000;
  public static final int SHUT_RDWR = 2;
  public static final int POLLIN = 0x1;

  public static final int MFD_CLOEXEC = 1;
  public static final int MFD_ALLOW_SEALING = 2;
  public static final int F_ADD_SEALS = 1033;
  public static final int F_GET_SEALS = 1034;
  public static final int F_SEAL_SEAL = 1;
  public static final int F_SEAL_SHRINK = 2;
  public static final int F_SEAL_GROW = 4;

  public static final int PROT_READ = 1;
  public static final int PROT_WRITE = 2;
  public static final int MAP_SHARED = 1;
  private static final int MAP_PRIVATE = 2;
  private static final int MAP_FIXED = 0x10;
  private static final int MAP_ANONYMOUS = 0x20;
  private static final int MAP_NORESERVE = 0x4000;
  public static final int SEEK_END = 2;

  public static final int EINTR = 4;
  public static final int EAGAIN = 11;
  public static final int ECONNREFUSED = 111;
  public static final int EADDRINUSE = 98;
  public static final int ENOENT = 2;


  private static final Linker LINKER = Linker.nativeLinker();
  private static final SymbolLookup LIBC = LINKER.defaultLookup();
  private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
  /** The errno capture area's layout, for callers that place one in a buffer of their own. */
  static final StructLayout CAPTURE_LAYOUT = CAPTURE;
  private static final VarHandle ERRNO =
      CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
  private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

  private static final MethodHandle MEMFD_CREATE =
      capturing("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle FTRUNCATE =
      capturing("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
  private static final MethodHandle FCNTL_INT =
      LINKER.downcallHandle(
          LIBC.findOrThrow("fcntl"),
          FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT),
          CAPTURE_ERRNO,
          Linker.Option.firstVariadicArg(2));
  private static final MethodHandle LSEEK =
      capturing("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
  private static final MethodHandle MMAP =
      capturing(
          "mmap",
          FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
  private static final MethodHandle MUNMAP =
      LINKER.downcallHandle(
          LIBC.findOrThrow("munmap"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
  private static final MethodHandle CLOSE =
      capturing("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final MethodHandle SOCKET =
      capturing("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle BIND =
      capturing("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle LISTEN =
      capturing("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle ACCEPT4 =
      capturing("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
  private static final MethodHandle CONNECT =
      capturing("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle SENDMSG =
      capturing("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle RECVMSG =
      capturing("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle SEND =
      LINKER.downcallHandle(LIBC.findOrThrow("send"),
          FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  private static final MethodHandle SHUTDOWN =
      capturing("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle GETSOCKOPT =
      capturing(
          "getsockopt",
          FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle POLL =
      capturing("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  private static final MethodHandle EVENTFD =
      capturing("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle WRITE =
      capturing("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
  private static final MethodHandle READ =
      capturing("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
  private static final MethodHandle EPOLL_CREATE1 =
      capturing("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final MethodHandle EPOLL_CTL =
      capturing("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final MethodHandle EPOLL_WAIT =
      capturing("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
  private static final MethodHandle MADVISE =
      capturing("madvise", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  private static final MethodHandle GETUID =
      LINKER.downcallHandle(LIBC.findOrThrow("getuid"), FunctionDescriptor.of(JAVA_INT));

  private static MethodHandle capturing(String name, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(LIBC.findOrThrow(name), descriptor, CAPTURE_ERRNO);
  }

  /** A fresh errno capture area; callers own its arena. */
  static MemorySegment newCapture(Arena arena) {
    return arena.allocate(CAPTURE);
  }

  static int errno(MemorySegment capture) {
    return (int) ERRNO.get(capture, 0L);
  }

  private static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException re) {
      return re;
    }
    if (t instanceof Error e) {
      throw e;
    }
    return new IllegalStateException(t);
  }

  // ---- files and memory ----

  /** Creates an anonymous, sealable, close-on-exec memory file (never visible in /dev/shm). */
  public static int memfdCreate(String name) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int fd = (int) MEMFD_CREATE.invokeExact(cap, arena.allocateFrom(name),
          MFD_CLOEXEC | MFD_ALLOW_SEALING);
      if (fd < 0) {
        throw new NativeException("memfd_create", errno(cap));
      }
      return fd;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static void ftruncate(int fd, long size) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int rc = (int) FTRUNCATE.invokeExact(cap, fd, size);
      if (rc != 0) {
        throw new NativeException("ftruncate", errno(cap));
      }
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static void addSeals(int fd, int seals) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int rc = (int) FCNTL_INT.invokeExact(cap, fd, F_ADD_SEALS, seals);
      if (rc != 0) {
        throw new NativeException("fcntl(F_ADD_SEALS)", errno(cap));
      }
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Clears O_NONBLOCK (sockets are connected non-blocking, then used blocking). */
  public static void setBlocking(int fd) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int flags = (int) FCNTL_INT.invokeExact(cap, fd, F_GETFL, 0);
      if (flags < 0) {
        throw new NativeException("fcntl(F_GETFL)", errno(cap));
      }
      int rc = (int) FCNTL_INT.invokeExact(cap, fd, F_SETFL, flags & ~O_NONBLOCK);
      if (rc < 0) {
        throw new NativeException("fcntl(F_SETFL)", errno(cap));
      }
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int getSeals(int fd) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int rc = (int) FCNTL_INT.invokeExact(cap, fd, F_GET_SEALS, 0);
      if (rc < 0) {
        throw new NativeException("fcntl(F_GET_SEALS)", errno(cap));
      }
      return rc;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Size of the file behind {@code fd} (lseek to the end; memfds have no other cursor users). */
  public static long fileSize(int fd) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      long rc = (long) LSEEK.invokeExact(cap, fd, 0L, SEEK_END);
      if (rc < 0) {
        throw new NativeException("lseek", errno(cap));
      }
      return rc;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Maps {@code size} bytes of {@code fd} shared and read-write; returns the address. */
  static long mmapShared(int fd, long size) {
    return mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
  }

  /**
   * Replaces {@code [address, address + size)} (a mapping of ours) by private, zero-filled,
   * unreserved pages in one step: no instant at which the range is unmapped.
   */
  static void mmapPlaceholder(long address, long size) {
    long at = mmap(address, size, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1);
    if (at != address) {
      throw new IllegalStateException("MAP_FIXED placed the mapping elsewhere");
    }
  }

  private static long mmap(long hint, long size, int prot, int flags, int fd) {
    try (Arena tmp = Arena.ofConfined()) {
      MemorySegment cap = newCapture(tmp);
      MemorySegment addr = (MemorySegment) MMAP.invokeExact(cap, MemorySegment.ofAddress(hint),
          size, prot, flags, fd, 0L);
      if (addr.address() == -1L) {
        throw new NativeException("mmap", errno(cap));
      }
      return addr.address();
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static void munmap(long address, long size) {
    try {
      int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(address), size);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Closes a descriptor; errors other than EINTR are reported (double close is a bug). */
  public static void close(int fd) {
    if (fd < 0) {
      return;
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int rc = (int) CLOSE.invokeExact(cap, fd);
      if (rc != 0 && errno(cap) != EINTR) {
        throw new NativeException("close", errno(cap));
      }
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  public static int getuid() {
    try {
      return (int) GETUID.invokeExact();
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- eventfd, epoll, madvise (EventFd, Epoll and SharedMapping are the API) ----

  static final int EFD_NONBLOCK = 0x800;
  static final int EFD_CLOEXEC = 0x80000;
  static final int EPOLL_CLOEXEC = 0x80000;
  static final int EPOLL_CTL_ADD = 1;
  static final int EPOLL_CTL_DEL = 2;
  static final int EPOLL_CTL_MOD = 3;
  static final int MADV_REMOVE = 9;

  static int eventfd(int flags) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int fd = (int) EVENTFD.invokeExact(cap, 0, flags);
      if (fd < 0) {
        throw new NativeException("eventfd", errno(cap));
      }
      return fd;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** write(2); returns bytes written or -errno. */
  static long write(int fd, MemorySegment buf, long len, MemorySegment cap) {
    try {
      long n = (long) WRITE.invokeExact(cap, fd, buf, len);
      return n >= 0 ? n : -errno(cap);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** read(2); returns bytes read or -errno. */
  static long read(int fd, MemorySegment buf, long len, MemorySegment cap) {
    try {
      long n = (long) READ.invokeExact(cap, fd, buf, len);
      return n >= 0 ? n : -errno(cap);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int epollCreate() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int fd = (int) EPOLL_CREATE1.invokeExact(cap, EPOLL_CLOEXEC);
      if (fd < 0) {
        throw new NativeException("epoll_create1", errno(cap));
      }
      return fd;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** epoll_ctl(2); returns 0 or -errno. */
  static int epollCtl(int epfd, int op, int fd, MemorySegment event, MemorySegment cap) {
    try {
      int rc = (int) EPOLL_CTL.invokeExact(cap, epfd, op, fd, event);
      return rc == 0 ? 0 : -errno(cap);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** epoll_wait(2); returns the number of events or -errno. */
  static int epollWait(int epfd, MemorySegment events, int max, int timeoutMillis,
      MemorySegment cap) {
    try {
      int n = (int) EPOLL_WAIT.invokeExact(cap, epfd, events, max, timeoutMillis);
      return n >= 0 ? n : -errno(cap);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** madvise(2) on raw addresses; returns 0 or -errno. */
  static int madvise(long address, long length, int advice) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int rc = (int) MADVISE.invokeExact(cap, MemorySegment.ofAddress(address), length, advice);
      return rc == 0 ? 0 : -errno(cap);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- sockets (package-private; UnixSeqpacketSocket is the API) ----

  static int socket(int domain, int type, int protocol) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cap = newCapture(arena);
      int fd = (int) SOCKET.invokeExact(cap, domain, type, protocol);
      if (fd < 0) {
        throw new NativeException("socket", errno(cap));
      }
      return fd;
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int bind(int fd, MemorySegment addr, int len, MemorySegment cap) {
    try {
      return (int) BIND.invokeExact(cap, fd, addr, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int listen(int fd, int backlog, MemorySegment cap) {
    try {
      return (int) LISTEN.invokeExact(cap, fd, backlog);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int accept4(int fd, int flags, MemorySegment cap) {
    try {
      return (int) ACCEPT4.invokeExact(cap, fd, MemorySegment.NULL, MemorySegment.NULL, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int connect(int fd, MemorySegment addr, int len, MemorySegment cap) {
    try {
      return (int) CONNECT.invokeExact(cap, fd, addr, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static long sendmsg(int fd, MemorySegment msghdr, int flags, MemorySegment cap) {
    try {
      return (long) SENDMSG.invokeExact(cap, fd, msghdr, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static long recvmsg(int fd, MemorySegment msghdr, int flags, MemorySegment cap) {
    try {
      return (long) RECVMSG.invokeExact(cap, fd, msghdr, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** send(2) without errno capture (callers only care whether it went out). */
  static long send(int fd, MemorySegment buf, long len, int flags) {
    try {
      return (long) SEND.invokeExact(fd, buf, len, flags);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int shutdown(int fd, int how) {
    try (Arena arena = Arena.ofConfined()) {
      return (int) SHUTDOWN.invokeExact(newCapture(arena), fd, how);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int getsockopt(
      int fd, int level, int name, MemorySegment value, MemorySegment len, MemorySegment cap) {
    try {
      return (int) GETSOCKOPT.invokeExact(cap, fd, level, name, value, len);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  static int poll(MemorySegment pollfd, int timeoutMillis, MemorySegment cap) {
    try {
      return (int) POLL.invokeExact(cap, pollfd, 1L, timeoutMillis);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }
}
