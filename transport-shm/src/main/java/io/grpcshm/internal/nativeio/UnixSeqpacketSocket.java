package io.grpcshm.internal.nativeio;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A Unix-domain {@code SOCK_SEQPACKET} socket: message boundaries are kept, a peer's death reads as
 * end-of-file at once, and file descriptors travel with a message via {@code SCM_RIGHTS}.
 *
 * <p>Names starting with {@code '@'} are in the abstract namespace (no file, scoped by network
 * namespace, gone when the listener closes); other names are filesystem paths.
 *
 * <p>Thread safety: {@link #send} may be called from any thread; {@link #receive} from one thread
 * at a time (so that messages are not split between readers); {@link #shutdown} from any thread,
 * and it wakes a blocked {@code receive} or accept. A socket owns no native memory: each call
 * takes a {@link MessageBuffer} for its own length.
 */
public final class UnixSeqpacketSocket implements Closeable {
  /** Largest message this transport exchanges on the socket (handshake and control). */
  public static final int MAX_MESSAGE = 4096;
  /** Most descriptors one message may carry; extra ones are closed and the message refused. */
  public static final int MAX_FDS = 4;

  // struct msghdr / iovec / cmsghdr on LP64 Linux.
  private static final long MSG_NAME = 0;
  private static final long MSG_IOV = 16;
  private static final long MSG_IOVLEN = 24;
  private static final long MSG_CONTROL = 32;
  private static final long MSG_CONTROLLEN = 40;
  private static final long MSG_FLAGS = 48;
  static final long MSGHDR_SIZE = 56;
  static final long IOV_SIZE = 16;
  private static final long CMSG_HEADER = 16;
  static final long CMSG_SPACE_MAX = CMSG_HEADER + 8L * ((MAX_FDS * 4 + 7) / 8);
  private static final int SOCKADDR_UN_SIZE = 110;

  private final int fd;
  /**
   * Serializes sends (one message at a time, whole) and guards the descriptor's release. The
   * native memory of each send or receive is a {@link MessageBuffer} taken for that call.
   */
  private final Object sendLock = new Object();
  @GuardedBy("sendLock") private boolean released;
  private final AtomicBoolean closed = new AtomicBoolean();
  /** {@link #sendWake} calls in progress; {@link #CLOSING} added when the descriptor closes. */
  private final AtomicInteger wakers = new AtomicInteger();
  private static final int CLOSING = Integer.MIN_VALUE / 2;
  /** What {@link #sendWake} sends: set once by the control protocol, shared by all sockets. */
  private static volatile MemorySegment wakeMessage;

  private UnixSeqpacketSocket(int fd) {
    this.fd = fd;
  }

  /** Binds and listens on {@code name}; fails with EADDRINUSE if another server owns it. */
  public static UnixSeqpacketSocket listen(String name, int backlog) throws IOException {
    int fd = Linux.socket(Linux.AF_UNIX, Linux.SOCK_SEQPACKET | Linux.SOCK_CLOEXEC, 0);
    try (Arena tmp = Arena.ofConfined()) {
      MemorySegment cap = Linux.newCapture(tmp);
      MemorySegment addr = tmp.allocate(SOCKADDR_UN_SIZE, 2);
      int len = encodeAddress(name, addr);
      if (Linux.bind(fd, addr, len, cap) != 0) {
        throw new NativeException("bind(" + name + ")", Linux.errno(cap)).asIoException();
      }
      if (Linux.listen(fd, backlog, cap) != 0) {
        throw new NativeException("listen(" + name + ")", Linux.errno(cap)).asIoException();
      }
      return new UnixSeqpacketSocket(fd);
    } catch (IOException | RuntimeException e) {
      Linux.close(fd);
      throw e;
    }
  }

  /**
   * Connects to {@code name}. A missing listener is reported as {@link NativeException} with
   * ECONNREFUSED (abstract names) or ENOENT (paths), which callers treat as "no shm here". The
   * connect is non-blocking, so a listener whose backlog is full fails at once with EAGAIN
   * instead of hanging.
   */
  public static UnixSeqpacketSocket connect(String name) {
    return connect(name, false);
  }

  /**
   * As {@link #connect}, but returns null, without an exception, when nothing listens on
   * {@code name} (ECONNREFUSED, ENOENT): a client trying several names in turn expects that, on
   * every connect, and an exception's stack trace costs more than the failed connect itself.
   */
  public static UnixSeqpacketSocket connectIfListening(String name) {
    return connect(name, true);
  }

  private static UnixSeqpacketSocket connect(String name, boolean nullIfNoListener) {
    int fd = Linux.socket(Linux.AF_UNIX,
        Linux.SOCK_SEQPACKET | Linux.SOCK_CLOEXEC | Linux.SOCK_NONBLOCK, 0);
    try (Arena tmp = Arena.ofConfined()) {
      MemorySegment cap = Linux.newCapture(tmp);
      MemorySegment addr = tmp.allocate(SOCKADDR_UN_SIZE, 2);
      int len = encodeAddress(name, addr);
      while (true) {
        if (Linux.connect(fd, addr, len, cap) == 0) {
          Linux.setBlocking(fd);
          return new UnixSeqpacketSocket(fd);
        }
        int errno = Linux.errno(cap);
        if (nullIfNoListener && (errno == Linux.ECONNREFUSED || errno == Linux.ENOENT)) {
          Linux.close(fd);
          return null;
        }
        if (errno != Linux.EINTR) {
          throw new NativeException("connect(" + name + ")", errno);
        }
      }
    } catch (RuntimeException e) {
      Linux.close(fd);
      throw e;
    }
  }

  private static int encodeAddress(String name, MemorySegment addr) {
    byte[] path;
    int offset;
    if (name.startsWith("@")) {
      path = name.substring(1).getBytes(StandardCharsets.UTF_8);
      offset = 1; // sun_path[0] == 0 selects the abstract namespace; no terminator
    } else {
      path = name.getBytes(StandardCharsets.UTF_8);
      offset = 0;
    }
    if (path.length + offset + 1 > 108) {
      throw new IllegalArgumentException("Unix socket name too long (max 107 bytes): " + name);
    }
    addr.fill((byte) 0);
    addr.set(JAVA_SHORT, 0, (short) Linux.AF_UNIX);
    MemorySegment.copy(MemorySegment.ofArray(path), 0, addr, 2 + offset, path.length);
    return offset == 1 ? 2 + 1 + path.length : 2 + path.length + 1;
  }

  /** Blocks for the next connection; returns null once {@link #shutdown} was called. */
  public UnixSeqpacketSocket accept() throws IOException {
    MessageBuffer buf = MessageBuffer.take();
    try {
      return accept(buf.capture);
    } finally {
      buf.giveBack();
    }
  }

  private UnixSeqpacketSocket accept(MemorySegment capture) throws IOException {
    while (true) {
      int child = Linux.accept4(fd, Linux.SOCK_CLOEXEC, capture);
      if (child >= 0) {
        return new UnixSeqpacketSocket(child);
      }
      int errno = Linux.errno(capture);
      if (closed.get()) {
        return null;
      }
      if (errno == Linux.EINTR || errno == Linux.EAGAIN || errno == 103 /* ECONNABORTED */) {
        continue;
      }
      if (errno == 22 /* EINVAL: listener shut down */) {
        return null;
      }
      throw new NativeException("accept4", errno).asIoException();
    }
  }

  /**
   * Waits up to {@code timeoutMillis} for a connection to {@link #accept} (or for
   * {@link #shutdown}, after which accept returns null at once). False if the time ran out.
   */
  public boolean awaitAcceptable(int timeoutMillis) throws IOException {
    MessageBuffer buf = MessageBuffer.take();
    try {
      awaitReadable(timeoutMillis, buf);
      return true;
    } catch (java.net.SocketTimeoutException e) {
      return false;
    } finally {
      buf.giveBack();
    }
  }

  /** SO_PEERCRED of the connected peer, as the kernel recorded it at connect time. */
  public PeerCredentials peerCredentials() throws IOException {
    try (Arena tmp = Arena.ofConfined()) {
      MemorySegment cap = Linux.newCapture(tmp);
      MemorySegment cred = tmp.allocate(12, 4);
      MemorySegment len = tmp.allocate(JAVA_INT);
      len.set(JAVA_INT, 0, 12);
      if (Linux.getsockopt(fd, Linux.SOL_SOCKET, Linux.SO_PEERCRED, cred, len, cap) != 0) {
        throw new NativeException("getsockopt(SO_PEERCRED)", Linux.errno(cap)).asIoException();
      }
      return new PeerCredentials(
          cred.get(JAVA_INT, 0), cred.get(JAVA_INT, 4), cred.get(JAVA_INT, 8));
    }
  }

  /** Sends one message, optionally with one descriptor. Throws if the peer is gone. */
  public void send(byte[] data, int length, int fdToSend) throws IOException {
    send(data, length, fdToSend, 0);
  }

  /**
   * Like {@link #send} but never blocks: a peer that stops reading its socket cannot stall the
   * caller (an event loop serving other connections). Throws {@link PeerNotReadingException} if
   * the socket's buffer is full.
   */
  public void sendNow(byte[] data, int length, int fdToSend) throws IOException {
    send(data, length, fdToSend, Linux.MSG_DONTWAIT);
  }

  /** The peer left its control socket full: it does not read what we send. */
  public static final class PeerNotReadingException extends IOException {
    PeerNotReadingException() {
      super("shared-memory peer does not read its control socket (buffer full)");
    }
  }

  /**
   * Sends one message without a descriptor and without ever waiting ({@code MSG_DONTWAIT}): for
   * a refusal on a connection nobody will serve. False if it did not go out (peer gone, its
   * queue full, or this socket closed).
   */
  public boolean trySend(byte[] data, int length) {
    try {
      send(data, length, -1, Linux.MSG_DONTWAIT);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private void send(byte[] data, int length, int fdToSend, int extraFlags) throws IOException {
    if (length > MAX_MESSAGE) {
      throw new IllegalArgumentException("message too large: " + length);
    }
    MessageBuffer buf = MessageBuffer.take();
    synchronized (sendLock) {
      try {
        send(data, length, fdToSend, extraFlags, buf);
      } finally {
        buf.giveBack();
      }
    }
  }

  @GuardedBy("sendLock")
  private void send(byte[] data, int length, int fdToSend, int extraFlags, MessageBuffer buf)
      throws IOException {
    if (closed.get()) {
      throw new IOException("socket closed");
    }
    MemorySegment payload = buf.payload;
    MemorySegment control = buf.control;
    MemorySegment hdr = buf.hdr;
    MemorySegment iov = buf.iov;
    MemorySegment cap = buf.capture;
    MemorySegment.copy(MemorySegment.ofArray(data), 0, payload, 0, length);
    iov.set(ADDRESS, 0, payload);
    iov.set(JAVA_LONG, 8, length);
    hdr.fill((byte) 0);
    hdr.set(ADDRESS, MSG_NAME, MemorySegment.NULL);
    hdr.set(ADDRESS, MSG_IOV, iov);
    hdr.set(JAVA_LONG, MSG_IOVLEN, 1);
    if (fdToSend >= 0) {
      control.fill((byte) 0);
      control.set(JAVA_LONG, 0, CMSG_HEADER + 4); // cmsg_len = CMSG_LEN(sizeof(int))
      control.set(JAVA_INT, 8, Linux.SOL_SOCKET);
      control.set(JAVA_INT, 12, Linux.SCM_RIGHTS);
      control.set(JAVA_INT, 16, fdToSend);
      hdr.set(ADDRESS, MSG_CONTROL, control);
      hdr.set(JAVA_LONG, MSG_CONTROLLEN, CMSG_HEADER + 8); // CMSG_SPACE(sizeof(int))
    } else {
      hdr.set(ADDRESS, MSG_CONTROL, MemorySegment.NULL);
      hdr.set(JAVA_LONG, MSG_CONTROLLEN, 0);
    }
    while (true) {
      long n = Linux.sendmsg(fd, hdr, Linux.MSG_NOSIGNAL | extraFlags, cap);
      if (n == length) {
        return;
      }
      if (n < 0 && Linux.errno(cap) == Linux.EINTR) {
        continue;
      }
      if (n < 0 && Linux.errno(cap) == Linux.EAGAIN && extraFlags != 0) {
        throw new PeerNotReadingException();
      }
      if (n < 0) {
        throw new NativeException("sendmsg", Linux.errno(cap)).asIoException();
      }
      throw new IOException("short sendmsg: " + n + " of " + length);
    }
  }

  /**
   * Receives one message into {@code dest}. Returns the message length, or -1 at end-of-file (peer
   * closed or died, or {@link #shutdown} was called). Received descriptors are stored into
   * {@code fdsOut} (unused slots set to -1); the caller owns them. Waits at most
   * {@code timeoutMillis} (negative: forever) and throws {@link java.net.SocketTimeoutException}.
   */
  public int receive(byte[] dest, int[] fdsOut, int timeoutMillis) throws IOException {
    MessageBuffer buf = MessageBuffer.take();
    try {
      if (timeoutMillis >= 0) {
        awaitReadable(timeoutMillis, buf);
      }
      return receive(dest, fdsOut, 0, false, buf);
    } finally {
      buf.giveBack();
    }
  }

  /** Result of {@link #tryReceive} when no message is waiting. */
  public static final int NOTHING = -2;

  /**
   * Like {@link #receive} but never waits: returns {@link #NOTHING} if no message is queued.
   * For an event loop that learned from epoll that the socket is readable.
   */
  public int tryReceive(byte[] dest, int[] fdsOut) throws IOException {
    MessageBuffer buf = MessageBuffer.take();
    try {
      return receive(dest, fdsOut, Linux.MSG_DONTWAIT, true, buf);
    } finally {
      buf.giveBack();
    }
  }

  private int receive(byte[] dest, int[] fdsOut, int extraFlags, boolean mayBeEmpty,
      MessageBuffer buf) throws IOException {
    MemorySegment recvBuf = buf.payload;
    MemorySegment recvHdr = buf.hdr;
    MemorySegment recvIov = buf.iov;
    MemorySegment recvControl = buf.control;
    MemorySegment recvCapture = buf.capture;
    java.util.Arrays.fill(fdsOut, -1);
    recvIov.set(ADDRESS, 0, recvBuf);
    recvIov.set(JAVA_LONG, 8, MAX_MESSAGE + 1); // one spare byte detects oversize messages
    recvHdr.fill((byte) 0);
    recvHdr.set(ADDRESS, MSG_IOV, recvIov);
    recvHdr.set(JAVA_LONG, MSG_IOVLEN, 1);
    recvControl.fill((byte) 0);
    recvHdr.set(ADDRESS, MSG_CONTROL, recvControl);
    recvHdr.set(JAVA_LONG, MSG_CONTROLLEN, CMSG_SPACE_MAX);
    long n;
    while (true) {
      n = Linux.recvmsg(fd, recvHdr, Linux.MSG_CMSG_CLOEXEC | extraFlags, recvCapture);
      if (n >= 0 || Linux.errno(recvCapture) != Linux.EINTR) {
        break;
      }
    }
    if (n < 0) {
      if (closed.get()) {
        return -1;
      }
      int errno = Linux.errno(recvCapture);
      if (errno == 104 /* ECONNRESET */) {
        return -1;
      }
      if (mayBeEmpty && errno == Linux.EAGAIN) {
        return NOTHING;
      }
      throw new NativeException("recvmsg", errno).asIoException();
    }
    int received = collectFds(fdsOut, recvHdr, recvControl);
    int flags = recvHdr.get(JAVA_INT, MSG_FLAGS);
    if (n == 0 && received == 0) {
      return -1;
    }
    if ((flags & Linux.MSG_CTRUNC) != 0 || received < 0) {
      closeAll(fdsOut);
      throw new IOException("peer sent more than " + MAX_FDS + " descriptors in one message");
    }
    if (n > MAX_MESSAGE || n > dest.length) {
      closeAll(fdsOut);
      throw new IOException("peer sent an oversize control message (" + n + " bytes)");
    }
    MemorySegment.copy(recvBuf, JAVA_BYTE, 0, dest, 0, (int) n);
    return (int) n;
  }

  /** Copies SCM_RIGHTS descriptors out of the control buffer; -1 if they did not fit. */
  private static int collectFds(int[] fdsOut, MemorySegment recvHdr, MemorySegment recvControl) {
    long controlLen = recvHdr.get(JAVA_LONG, MSG_CONTROLLEN);
    int count = 0;
    boolean overflow = false;
    long pos = 0;
    while (pos + CMSG_HEADER <= controlLen && pos + CMSG_HEADER <= CMSG_SPACE_MAX) {
      long cmsgLen = recvControl.get(JAVA_LONG, pos);
      int level = recvControl.get(JAVA_INT, pos + 8);
      int type = recvControl.get(JAVA_INT, pos + 12);
      if (cmsgLen < CMSG_HEADER || pos + cmsgLen > CMSG_SPACE_MAX) {
        break;
      }
      if (level == Linux.SOL_SOCKET && type == Linux.SCM_RIGHTS) {
        int n = (int) ((cmsgLen - CMSG_HEADER) / 4);
        for (int i = 0; i < n; i++) {
          int received = recvControl.get(JAVA_INT, pos + CMSG_HEADER + 4L * i);
          if (count < fdsOut.length) {
            fdsOut[count++] = received;
          } else {
            Linux.close(received);
            overflow = true;
          }
        }
      }
      pos += (cmsgLen + 7) & ~7L;
    }
    return overflow ? -1 : count;
  }

  private static void closeAll(int[] fds) {
    for (int i = 0; i < fds.length; i++) {
      if (fds[i] >= 0) {
        Linux.close(fds[i]);
        fds[i] = -1;
      }
    }
  }

  private void awaitReadable(int timeoutMillis, MessageBuffer buf) throws IOException {
    MemorySegment pollFd = buf.pollFd;
    MemorySegment recvCapture = buf.capture;
    long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
    while (true) {
      pollFd.set(JAVA_INT, 0, fd);
      pollFd.set(JAVA_SHORT, 4, (short) Linux.POLLIN);
      pollFd.set(JAVA_SHORT, 6, (short) 0);
      int remaining = (int) Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
      int rc = Linux.poll(pollFd, remaining, recvCapture);
      if (rc > 0) {
        return;
      }
      if (rc < 0 && Linux.errno(recvCapture) != Linux.EINTR) {
        throw new NativeException("poll", Linux.errno(recvCapture)).asIoException();
      }
      if (rc == 0 && System.nanoTime() >= deadline) {
        throw new java.net.SocketTimeoutException(
            "no message from peer within " + timeoutMillis + " ms");
      }
    }
  }

  /** Sets the message {@link #sendWake} sends (the control protocol's WAKE). */
  public static void wakeMessage(byte[] message) {
    MemorySegment m = Arena.global().allocate(message.length, 8);
    MemorySegment.copy(MemorySegment.ofArray(message), 0, m, 0, message.length);
    wakeMessage = m;
  }

  /**
   * Sends the WAKE message without ever blocking ({@code MSG_DONTWAIT}: a peer that does not
   * read its socket cannot stall the caller; a full socket means the peer has wake-ups pending
   * anyway). No allocation. False if it did not go out. Safe against a concurrent close: the
   * descriptor is not closed while a wake is being sent (its number could be reused).
   */
  public boolean sendWake() {
    if (wakers.incrementAndGet() < 0) {
      wakers.decrementAndGet();
      return false;
    }
    try {
      MemorySegment m = wakeMessage;
      return Linux.send(fd, m, m.byteSize(), Linux.MSG_DONTWAIT | Linux.MSG_NOSIGNAL)
          == m.byteSize();
    } finally {
      wakers.decrementAndGet();
    }
  }

  /** The descriptor, for epoll registration (the socket still owns it). */
  public int fd() {
    return fd;
  }

  /** Wakes any thread blocked in accept or receive; they then see end-of-file. Idempotent. */
  public void shutdown() {
    if (closed.compareAndSet(false, true)) {
      Linux.shutdown(fd, Linux.SHUT_RDWR);
    }
  }

  /**
   * Releases the descriptor and buffers. Call only after the threads using this socket have
   * stopped (call {@link #shutdown} first to wake them).
   */
  @Override
  public void close() {
    shutdown();
    synchronized (sendLock) {
      if (!released) {
        released = true;
        wakers.addAndGet(CLOSING);
        while (wakers.get() != CLOSING) {
          Thread.onSpinWait(); // a wake in progress ends within one send(2)
        }
        Linux.close(fd);
      }
    }
  }

  /** Process credentials of a connected peer. */
  public record PeerCredentials(int pid, int uid, int gid) {}
}
