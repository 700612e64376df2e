package io.grpcshm.dsa;

import static io.grpcshm.dsa.internal.Idxd.*;

import io.grpcshm.dsa.internal.CompletionRecord;
import io.grpcshm.dsa.internal.Descriptor;
import io.grpcshm.dsa.internal.Libc;
import io.grpcshm.dsa.internal.Memory;
import io.grpcshm.dsa.internal.TestLibc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A work queue at the far end of a socketpair, so the real {@link DsaPortal} write() path runs
 * without DSA: the portal writes 64-byte descriptors into one end, this thread reads them at the
 * other and, like the device, executes NOOP, MEMMOVE and BATCH and writes completion records - or
 * stays silent (a halted device, a dropped descriptor), or signals a software error the way the
 * idxd driver does, by making the queue's fd readable (EPOLLIN).
 */
final class FakeDsaDevice implements AutoCloseable {
  enum Behaviour { ANSWER, SILENT, SOFTWARE_ERROR }

  private final int portalFd;
  private final int deviceFd;
  private final Thread thread;
  private volatile boolean handedOut;
  volatile Behaviour behaviour = Behaviour.ANSWER;
  final AtomicInteger descriptors = new AtomicInteger();
  final AtomicInteger batches = new AtomicInteger();

  FakeDsaDevice() {
    int[] sv = TestLibc.socketPair();
    portalFd = sv[0];
    deviceFd = sv[1];
    thread = Thread.ofPlatform().daemon().name("fake-dsa").start(this::run);
  }

  /** Opens "the device node": the portal end, owned (and closed) by the mover from then on. */
  DeviceOpener opener() {
    return node -> {
      handedOut = true;
      return portalFd;
    };
  }

  private void run() {
    try (Arena a = Arena.ofConfined()) {
      MemorySegment buf = a.allocate(DESC_SIZE, DESC_ALIGN);
      Descriptor d = new Descriptor().wrap(buf, 0);
      for (;;) {
        long n = TestLibc.read(deviceFd, buf);
        if (n <= 0) {
          return; // the portal end was closed
        }
        descriptors.incrementAndGet();
        switch (behaviour) {
          case ANSWER -> execute(d);
          case SILENT -> { }
          case SOFTWARE_ERROR -> TestLibc.write(deviceFd, buf.asSlice(0, 1));
        }
      }
    }
  }

  private void execute(Descriptor d) {
    switch (d.opcode()) {
      case OP_NOOP -> record(d.completionAddr(), COMP_SUCCESS, 0);
      case OP_MEMMOVE -> {
        Memory.copy(d.srcAddr(), d.dstAddr(), d.xferSize());
        record(d.completionAddr(), COMP_SUCCESS, d.xferSize());
      }
      case OP_BATCH -> {
        batches.incrementAndGet();
        long count = d.xferSize();
        MemorySegment list = MemorySegment.ofAddress(d.srcAddr()).reinterpret(count * DESC_SIZE);
        Descriptor sub = new Descriptor();
        for (int k = 0; k < count; k++) {
          execute(sub.wrap(list, (long) k * DESC_SIZE));
        }
        record(d.completionAddr(), COMP_SUCCESS, count);
      }
      default -> record(d.completionAddr(), COMP_BAD_OPCODE, 0);
    }
  }

  private static void record(long address, int status, long bytes) {
    MemorySegment seg = MemorySegment.ofAddress(address).reinterpret(CR_SIZE);
    new CompletionRecord().wrap(seg, 0).fields(0, bytes, 0, 0).statusRelease(status);
  }

  /** Call after the registry is closed: its mover closed the portal end if it was opened. */
  @Override
  public void close() throws InterruptedException {
    if (!handedOut) {
      Libc.close(portalFd);
    }
    thread.join(5_000);
    if (thread.isAlive()) {
      throw new AssertionError("fake device thread still reading: the portal fd was not closed");
    }
    Libc.close(deviceFd);
  }
}
