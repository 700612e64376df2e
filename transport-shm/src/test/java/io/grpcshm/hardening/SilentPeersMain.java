package io.grpcshm.hardening;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.TreeMap;

/**
 * A child process for {@link AcceptAdmissionTest} (run as uid 65534 or as a pid the server's
 * policy refuses): it opens many connections to a shared-memory rendezvous socket and never sends
 * CLIENT_HELLO. JDK only and a single class file (no nested classes), so the test can copy it
 * where another uid can read it.
 *
 * <p>{@code <rendezvous> <count> <maxSeconds>}. Waits for a line on stdin, connects
 * {@code count} sockets (retrying a full backlog for up to 10 s), prints {@code OPEN n}; then,
 * every 100 ms until stdin closes or {@code maxSeconds} pass, reads what the server sent (without
 * ever answering) and reconnects each socket the server closed, as an attacker who keeps its
 * connections open would. At the end prints {@code REJECT <code> <count>} per SERVER_REJECT status
 * code read, {@code EOF n}, {@code CONNECTS n} and {@code DONE}.
 */
public final class SilentPeersMain {
  private static final int AF_UNIX = 1;
  private static final int SOCK_SEQPACKET = 5;
  private static final int SOCK_NONBLOCK = 0x800;
  private static final int SOCK_CLOEXEC = 0x80000;
  private static final int MSG_DONTWAIT = 0x40;
  private static final int EAGAIN = 11;
  private static final int EINTR = 4;
  private static final int MAGIC = 0x4d485347;
  private static final int TYPE_SERVER_REJECT = 3;

  private static final Linker LINKER = Linker.nativeLinker();
  private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO = CAPTURE.varHandle(
      MemoryLayout.PathElement.groupElement("errno"));
  private static final MethodHandle SOCKET = function("socket",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
          ValueLayout.JAVA_INT), false);
  private static final MethodHandle CONNECT = function("connect",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
          ValueLayout.JAVA_INT), true);
  private static final MethodHandle RECV = function("recv",
      FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
          ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT), true);
  private static final MethodHandle CLOSE = function("close",
      FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), false);

  private static volatile boolean stdinClosed;

  private SilentPeersMain() {}

  private static MethodHandle function(String name, FunctionDescriptor d, boolean errno) {
    MemorySegment address = LINKER.defaultLookup().find(name).orElseThrow();
    return errno
        ? LINKER.downcallHandle(address, d, Linker.Option.captureCallState("errno"))
        : LINKER.downcallHandle(address, d);
  }

  public static void main(String[] args) throws Throwable {
    String rendezvous = args[0];
    int count = Integer.parseInt(args[1]);
    long end = System.nanoTime() + Long.parseLong(args[2]) * 1_000_000_000L;
    InputStream in = System.in;
    int c;
    while ((c = in.read()) != -1 && c != '\n') {
      // wait for the go line
    }
    Thread stdin = new Thread(() -> {
      try {
        while (in.read() != -1) {
          // until the parent closes stdin or dies
        }
      } catch (IOException ignored) {
        // parent gone
      }
      stdinClosed = true;
    }, "stdin");
    stdin.setDaemon(true);
    stdin.start();

    try (Arena arena = Arena.ofConfined()) {
      MemorySegment address = arena.allocate(110, 2);
      int addressLength = encode(rendezvous, address);
      MemorySegment capture = arena.allocate(CAPTURE);
      MemorySegment buf = arena.allocate(4097, 8);
      int[] fds = new int[count];
      Arrays.fill(fds, -1);
      long connects = 0;
      long eofs = 0;
      TreeMap<Integer, Long> rejects = new TreeMap<>();
      long connectDeadline = System.nanoTime() + 10_000_000_000L;
      int open = 0;
      for (int i = 0; i < count && System.nanoTime() < connectDeadline; ) {
        int fd = connect(address, addressLength, capture);
        if (fd >= 0) {
          fds[i++] = fd;
          open++;
          connects++;
        } else {
          Thread.sleep(5); // backlog full: the server is not accepting
        }
      }
      System.out.println("OPEN " + open);
      System.out.flush();
      while (!stdinClosed && System.nanoTime() < end) {
        Thread.sleep(100);
        for (int i = 0; i < count; i++) {
          if (fds[i] < 0) {
            fds[i] = connect(address, addressLength, capture);
            connects += fds[i] >= 0 ? 1 : 0;
            continue;
          }
          while (true) {
            long n = (long) RECV.invokeExact(capture, fds[i], buf, 4097L, MSG_DONTWAIT);
            if (n > 0) {
              if (n >= 12 && buf.get(ValueLayout.JAVA_INT_UNALIGNED, 0) == MAGIC
                  && buf.get(ValueLayout.JAVA_BYTE, 4) == TYPE_SERVER_REJECT) {
                rejects.merge(buf.get(ValueLayout.JAVA_INT_UNALIGNED, 8), 1L, Long::sum);
              }
              continue;
            }
            int errno = n < 0 ? (int) ERRNO.get(capture, 0L) : 0;
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
              break; // still open, nothing to read
            }
            // EOF or reset: the server closed it; reconnect on the next round
            eofs++;
            int rc = (int) CLOSE.invokeExact(fds[i]);
            fds[i] = -1;
            break;
          }
        }
      }
      for (int fd : fds) {
        if (fd >= 0) {
          int rc = (int) CLOSE.invokeExact(fd);
        }
      }
      for (var e : rejects.entrySet()) {
        System.out.println("REJECT " + e.getKey() + " " + e.getValue());
      }
      System.out.println("EOF " + eofs);
      System.out.println("CONNECTS " + connects);
      System.out.println("DONE");
      System.out.flush();
    }
    System.exit(0);
  }

  /** A connected socket, or -1 if the listener's backlog is full (or nobody listens). */
  private static int connect(MemorySegment address, int length, MemorySegment capture)
      throws Throwable {
    int fd = (int) SOCKET.invokeExact(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      return -1;
    }
    while (true) {
      int rc = (int) CONNECT.invokeExact(capture, fd, address, length);
      if (rc == 0) {
        return fd;
      }
      if ((int) ERRNO.get(capture, 0L) != EINTR) {
        rc = (int) CLOSE.invokeExact(fd);
        return -1;
      }
    }
  }

  private static int encode(String name, MemorySegment address) {
    byte[] path;
    int offset;
    if (name.startsWith("@")) {
      path = name.substring(1).getBytes(StandardCharsets.UTF_8);
      offset = 1;
    } else {
      path = name.getBytes(StandardCharsets.UTF_8);
      offset = 0;
    }
    address.fill((byte) 0);
    address.set(ValueLayout.JAVA_SHORT, 0, (short) AF_UNIX);
    MemorySegment.copy(MemorySegment.ofArray(path), 0, address, 2 + offset, path.length);
    return 3 + path.length; // family, then name and NUL (path) or NUL and name (abstract)
  }
}
