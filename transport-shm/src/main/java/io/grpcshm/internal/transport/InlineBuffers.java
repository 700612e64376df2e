package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.internal.AbstractReadableBuffer;
import io.grpc.internal.ReadableBuffer;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Heap arrays for received DATA_INLINE payloads, reused once grpc has read them. The loop copies
 * each inline payload out of the ring (read once, then parsed from our copy); without reuse that
 * copy was a new array per message, the largest allocation the transport made per small message.
 *
 * <p>A payload's array goes back to a process-wide free list when the last buffer reading it is
 * closed: grpc's deframer closes what it has consumed, and the message stream it hands the
 * marshaller is closed after parsing (or, if the marshaller detaches it, by the marshaller). This
 * is the contract grpc-netty's pooled receive buffers already impose: bytes obtained from the
 * stream ({@code getByteBuffer}, {@code array}) are valid until the stream is closed. A buffer
 * never closed costs nothing but the reuse: its array is ordinary garbage then.
 *
 * <p>Size classes are powers of two from {@value #MIN_CLASS_BYTES} bytes to {@value
 * #MAX_CLASS_BYTES}; larger payloads (only a peer ignoring the inline threshold sends them) get a
 * plain array. A class keeps up to {@value #KEPT_BYTES_PER_CLASS} bytes of arrays (at most 256)
 * for good. Beyond that it grows with demand, to at most {@value #MAX_BYTES_PER_CLASS} bytes
 * (at most {@value #MAX_ENTRIES_PER_CLASS} arrays): a stream read more slowly than it arrives
 * holds up to its flow-control window (4 MiB by default) of received messages, and those must
 * live somewhere; pooled, they are not garbage per message. Arrays beyond the kept ones that
 * stayed free for a whole {@link #TRIM_PERIOD_NANOS} are dropped ({@link #trimIfDue}, from the
 * connections' once-a-second tick), so a burst's arrays go back to the heap once it is over.
 * While all of a class's arrays are lent, a payload gets a plain array of its exact size.
 */
final class InlineBuffers {
  static final int MIN_CLASS_BYTES = 64;
  /** The default inline threshold is 16 KiB; a payload is the message plus grpc's 5-byte prefix. */
  static final int MAX_CLASS_BYTES = 32 * 1024;
  /** Arrays a class keeps however long they stay free. */
  static final int KEPT_BYTES_PER_CLASS = 256 * 1024;
  private static final int KEPT_ENTRIES_PER_CLASS = 256;
  /** The most a class makes at once: a default stream window of 1 KiB messages, pooled. */
  static final int MAX_BYTES_PER_CLASS = 8 << 20;
  static final int MAX_ENTRIES_PER_CLASS = 8192;
  /** Arrays beyond the kept ones free for this long are dropped. */
  static final long TRIM_PERIOD_NANOS = TimeUnit.SECONDS.toNanos(5);
  private static final AtomicLong nextTrim = new AtomicLong(System.nanoTime() + TRIM_PERIOD_NANOS);
  private static final int MIN_SHIFT = Integer.numberOfTrailingZeros(MIN_CLASS_BYTES);
  private static final int CLASSES = Integer.numberOfTrailingZeros(MAX_CLASS_BYTES) - MIN_SHIFT + 1;

  private static final SizeClass[] POOL = new SizeClass[CLASSES];

  static {
    for (int i = 0; i < CLASSES; i++) {
      int bytes = MIN_CLASS_BYTES << i;
      POOL[i] = new SizeClass(bytes,
          Math.min(KEPT_ENTRIES_PER_CLASS, KEPT_BYTES_PER_CLASS / bytes),
          Math.min(MAX_ENTRIES_PER_CLASS, MAX_BYTES_PER_CLASS / bytes));
    }
  }

  private InlineBuffers() {}

  /**
   * A buffer of {@code length} bytes for the caller to fill (before anyone else sees it) through
   * {@link Payload#array()}; closing the returned buffer gives the array back.
   */
  static Payload obtain(int length) {
    if (length > MAX_CLASS_BYTES) {
      return new Payload(new Shared(new byte[length], null), 0, length);
    }
    SizeClass sizeClass = POOL[classOf(length)];
    Shared shared = sizeClass.take();
    if (shared == null) {
      // Every array of the class is out (a stream's receive window can hold thousands of
      // messages the application has not read yet): an exact, unpooled one, as before pooling.
      shared = new Shared(new byte[length], null);
    }
    return new Payload(shared, 0, length);
  }

  /** The size class holding {@code length} bytes (0 for up to {@value #MIN_CLASS_BYTES}). */
  static int classOf(int length) {
    int bits = 32 - Integer.numberOfLeadingZeros(Math.max(length, MIN_CLASS_BYTES) - 1);
    return bits - MIN_SHIFT;
  }

  /** Free arrays of one size class (tests). */
  static int freeCount(int length) {
    return POOL[classOf(length)].size();
  }

  /** Arrays one size class has made and not dropped, lent or free (tests). */
  static int madeCount(int length) {
    return POOL[classOf(length)].made();
  }

  /**
   * Drops, in every class, the arrays beyond the kept ones that stayed free since the last trim;
   * at most once per {@link #TRIM_PERIOD_NANOS} however many callers (any thread, cheap when not
   * due).
   */
  static void trimIfDue(long nowNanos) {
    long due = nextTrim.get();
    if (nowNanos - due < 0 || !nextTrim.compareAndSet(due, nowNanos + TRIM_PERIOD_NANOS)) {
      return;
    }
    trimNow();
  }

  /** One trim now (tests; {@link #trimIfDue} otherwise). */
  static void trimNow() {
    for (SizeClass c : POOL) {
      c.trim();
    }
  }

  /** Drops every free array beyond the kept ones (no connection is left to need them). */
  static void trimAll() {
    for (SizeClass c : POOL) {
      c.dropFree();
    }
  }

  /** Tests: no periodic trim for the next {@code nanos} (other tests' connections tick). */
  static void holdPeriodicTrims(long nanos) {
    nextTrim.set(System.nanoTime() + nanos);
  }

  /**
   * One size class: at most {@code maxEntries} arrays made at once, each either lent or on the
   * free stack. A lent array that is never closed is only lost to the pool, not to correctness.
   */
  private static final class SizeClass {
    final int bytes;
    /** Arrays kept however long they stay free. */
    private final int keptEntries;
    private final int maxEntries;
    @GuardedBy("this") private Shared[] free = new Shared[16];
    @GuardedBy("this") private int count;
    @GuardedBy("this") private int made;
    /** The fewest free arrays since the last trim: that many were not needed all along. */
    @GuardedBy("this") private int lowWater;

    SizeClass(int bytes, int keptEntries, int maxEntries) {
      this.bytes = bytes;
      this.keptEntries = keptEntries;
      this.maxEntries = maxEntries;
    }

    /** A free array, or a new one while fewer than the maximum exist; null otherwise. */
    synchronized Shared take() {
      if (count > 0) {
        Shared s = free[--count];
        free[count] = null;
        if (count < lowWater) {
          lowWater = count;
        }
        s.refs = 1;
        return s;
      }
      lowWater = 0;
      if (made < maxEntries) {
        made++;
        return new Shared(new byte[bytes], this);
      }
      return null;
    }

    synchronized void offer(Shared s) {
      if (count == free.length) {
        // At most `made` arrays exist, so the stack grows only while the class does.
        free = Arrays.copyOf(free, Math.min(maxEntries, free.length * 2));
      }
      free[count++] = s;
    }

    /** Drops the free arrays beyond the kept ones that no take needed since the last trim. */
    synchronized void trim() {
      drop(Math.min(lowWater, Math.min(count, made - keptEntries)));
    }

    /** Drops every free array beyond the kept ones. */
    synchronized void dropFree() {
      drop(Math.min(count, made - keptEntries));
    }

    @GuardedBy("this")
    private void drop(int drop) {
      for (int i = 0; i < drop; i++) {
        free[--count] = null;
      }
      if (drop > 0) {
        made -= drop;
        if (free.length > 16 && count < free.length / 4) {
          free = Arrays.copyOf(free, Math.max(16, free.length / 2));
        }
      }
      lowWater = count;
    }

    synchronized int size() {
      return count;
    }

    synchronized int made() {
      return made;
    }
  }

  /** An array and the number of open buffers reading it. */
  private static final class Shared {
    private static final VarHandle REFS;

    static {
      try {
        REFS = MethodHandles.lookup().findVarHandle(Shared.class, "refs", int.class);
      } catch (ReflectiveOperationException e) {
        throw new ExceptionInInitializerError(e);
      }
    }

    final byte[] bytes;
    /** Null for an array that is not pooled. */
    final SizeClass home;
    volatile int refs = 1;

    Shared(byte[] bytes, SizeClass home) {
      this.bytes = bytes;
      this.home = home;
    }

    void retain() {
      int before = (int) REFS.getAndAdd(this, 1);
      if (before <= 0) {
        throw new IllegalStateException("inline payload already released");
      }
    }

    void release() {
      int after = (int) REFS.getAndAdd(this, -1) - 1;
      if (after == 0) {
        if (home != null) {
          home.offer(this);
        }
      } else if (after < 0) {
        throw new IllegalStateException("inline payload released twice");
      }
    }
  }

  /** A view of a pooled array: what grpc's deframer reads a DATA_INLINE payload from. */
  static final class Payload extends AbstractReadableBuffer {
    private final Shared shared;
    private final int end;
    private int position;
    private int mark;
    private boolean closed;

    private Payload(Shared shared, int offset, int end) {
      this.shared = shared;
      this.position = offset;
      this.mark = offset;
      this.end = end;
    }

    @Override
    public int readableBytes() {
      return end - position;
    }

    private void check(int length) {
      if (closed) {
        throw new IllegalStateException("buffer closed");
      }
      if (length < 0 || length > end - position) {
        throw new IndexOutOfBoundsException(
            "read of " + length + " bytes with " + (end - position) + " readable");
      }
    }

    @Override
    public int readUnsignedByte() {
      check(1);
      return shared.bytes[position++] & 0xff;
    }

    @Override
    public void skipBytes(int length) {
      check(length);
      position += length;
    }

    @Override
    public void readBytes(byte[] dest, int destOffset, int length) {
      check(length);
      System.arraycopy(shared.bytes, position, dest, destOffset, length);
      position += length;
    }

    @Override
    public void readBytes(OutputStream dest, int length) throws IOException {
      check(length);
      dest.write(shared.bytes, position, length);
      position += length;
    }

    @Override
    public ReadableBuffer readBytes(int length) {
      check(length);
      shared.retain();
      Payload slice = new Payload(shared, position, position + length);
      position += length;
      return slice;
    }

    @Override
    public boolean hasArray() {
      return true;
    }

    /** The backing array; valid until this buffer is closed. */
    @Override
    public byte[] array() {
      return shared.bytes;
    }

    @Override
    public int arrayOffset() {
      return position;
    }

    @Override
    public boolean markSupported() {
      return true;
    }

    @Override
    public void mark() {
      mark = position;
    }

    @Override
    public void reset() {
      position = mark;
    }

    @Override
    public boolean byteBufferSupported() {
      return true;
    }

    /** The unread bytes; valid until this buffer is closed. */
    @Override
    public ByteBuffer getByteBuffer() {
      return ByteBuffer.wrap(shared.bytes, position, end - position).slice();
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        shared.release();
      }
    }
  }
}
