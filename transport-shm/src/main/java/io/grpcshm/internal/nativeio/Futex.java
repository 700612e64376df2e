package io.grpcshm.internal.nativeio;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Cross-process futex wait and wake on a 32-bit word of a shared mapping (futex(2) without
 * FUTEX_PRIVATE_FLAG: the kernel keys it by the memory file's page, so a waiter in one process
 * and a waker in another meet). Both calls take the word's raw address: the caller guarantees the
 * mapping outlives a wait (a lease on the connection's memory); a wake at an address unmapped
 * meanwhile fails with EFAULT or, if something else was mapped there since, at worst wakes a
 * waiter spuriously, which every futex waiter tolerates (it re-checks its word). Results are not
 * errors to report: the caller re-reads the word after every return (woken, EAGAIN because the
 * word changed, ETIMEDOUT, EINTR).
 */
public final class Futex {
  /** futex(2)'s number on this architecture; -1 where we do not know it (no mailboxes then). */
  private static final long SYS_FUTEX = switch (System.getProperty("os.arch")) {
    case "amd64", "x86_64" -> 202;
    case "aarch64" -> 98;
    default -> -1;
  };
  private static final long FUTEX_WAIT = 0;
  private static final long FUTEX_WAKE = 1;
  private static final MethodHandle SYSCALL;
  /** A struct timespec per waiting thread (relative timeout for FUTEX_WAIT). */
  private static final ThreadLocal<MemorySegment> TIMESPEC =
      ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(16, 8));

  static {
    Linker linker = Linker.nativeLinker();
    SYSCALL = linker.downcallHandle(linker.defaultLookup().findOrThrow("syscall"),
        FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
            JAVA_LONG, JAVA_LONG),
        Linker.Option.firstVariadicArg(1));
  }

  private Futex() {}

  /** Whether this architecture's futex call is known here (reply mailboxes need it). */
  public static boolean isAvailable() {
    return SYS_FUTEX > 0;
  }

  /**
   * Sleeps while the word at {@code address} holds {@code expected}, for at most {@code nanos}
   * (positive). Returns on a wake, a timeout, a signal, or at once if the word differs.
   */
  public static void await(long address, int expected, long nanos) {
    MemorySegment timeout = TIMESPEC.get();
    timeout.set(JAVA_LONG, 0, nanos / 1_000_000_000L);
    timeout.set(JAVA_LONG, 8, nanos % 1_000_000_000L);
    try {
      long ignored = (long) SYSCALL.invokeExact(SYS_FUTEX, address, FUTEX_WAIT,
          (long) expected, timeout.address(), 0L, 0L);
    } catch (Throwable t) {
      throw new IllegalStateException("futex wait", t);
    }
  }

  /** Wakes every waiter on the word at {@code address} (a mailbox has at most one). */
  public static void wake(long address) {
    try {
      long ignored = (long) SYSCALL.invokeExact(SYS_FUTEX, address, FUTEX_WAKE,
          (long) Integer.MAX_VALUE, 0L, 0L, 0L);
    } catch (Throwable t) {
      throw new IllegalStateException("futex wake", t);
    }
  }
}
