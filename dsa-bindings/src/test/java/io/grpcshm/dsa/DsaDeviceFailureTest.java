package io.grpcshm.dsa;

import static org.junit.jupiter.api.Assertions.*;

import io.grpcshm.dsa.internal.Idxd;
import io.grpcshm.dsa.internal.TestLibc;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The DSA mover's behaviour around a device, through the real write() portal: a fake sysfs tree
 * for discovery and state, a {@link FakeDsaDevice} at the far end of a socketpair for the queue.
 */
class DsaDeviceFailureTest {
  /** Sapphire Rapids-like op_cap: NOOP, BATCH, DRAIN, MEMMOVE, ... (bit 1 is BATCH). */
  static final String OPCAP = "00000000,003f03ff";
  static final String OPCAP_WITHOUT_BATCH = "00000000,003f03fd";

  @TempDir Path tmp;
  private Path sys;
  private Path dev;
  private FakeDsaDevice device;
  private Arena arena;

  @BeforeEach
  void setUp() {
    device = new FakeDsaDevice();
    arena = Arena.ofShared();
  }

  @AfterEach
  void tearDown() throws InterruptedException {
    device.close();
    arena.close();
  }

  private void tree(String mode, String opCap, String opConfig) throws IOException {
    sys = Files.createDirectories(tmp.resolve("sys"));
    dev = Files.createDirectories(tmp.resolve("dev"));
    Path d = Files.createDirectories(sys.resolve("dsa0"));
    Files.writeString(d.resolve("state"), "enabled\n");
    Files.writeString(d.resolve("gen_cap"), "0x40915f0107\n");
    Files.writeString(d.resolve("op_cap"), opCap + "\n");
    Files.writeString(d.resolve("errors"), "0x0000000000000000 0x0000000000000000"
        + " 0x0000000000000000 0x0000000000000000\n");
    Path q = Files.createDirectories(sys.resolve("wq0.0"));
    Files.writeString(q.resolve("state"), "enabled\n");
    Files.writeString(q.resolve("mode"), mode + "\n");
    Files.writeString(q.resolve("type"), "user\n");
    Files.writeString(q.resolve("size"), "16\n");
    Files.writeString(q.resolve("max_transfer_size"), "2097152\n");
    Files.writeString(q.resolve("max_batch_size"), "32\n");
    if (opConfig != null) {
      Files.writeString(q.resolve("op_config"), opConfig + "\n");
    }
    Files.writeString(dev.resolve("wq0.0"), "");
  }

  private MoverRegistry open() {
    return MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false).software(false)
        .sysfsRoot(sys).devDir(dev).probeTimeout(Duration.ofSeconds(5))
        .opener(device.opener()));
  }

  private MemorySegment pattern(long size, int seed) {
    MemorySegment s = arena.allocate(size, 64);
    for (long i = 0; i < size; i++) {
      s.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + seed));
    }
    return s;
  }

  @Test
  void copiesAndBatchesGoThroughTheWritePath() throws IOException {
    tree("shared", OPCAP, null);
    try (MoverRegistry r = open()) {
      DataMover m = r.get(MoverKind.DSA);
      assertTrue(m.isAvailable(), m.unavailableReason());
      MemorySegment src = pattern(1 << 20, 1);
      MemorySegment dst = arena.allocate(1 << 20);
      m.copy(src, 0, dst, 0, 1 << 20, false, WaitStrategy.spin());
      assertEquals(-1, src.mismatch(dst));
      Batch b = new Batch(4);
      MemorySegment dst2 = arena.allocate(4 * 4096);
      for (int k = 0; k < 4; k++) {
        b.add(src, k * 4096L, dst2, k * 4096L, 4096);
      }
      Completion c = m.submit(b);
      c.join(WaitStrategy.spin());
      c.release();
      assertEquals(-1, src.asSlice(0, 4 * 4096).mismatch(dst2));
      assertEquals(1, device.batches.get(), "one BATCH descriptor");
    }
  }

  /** Submits a copy the device never completes and waits for it like the transport does. */
  private Completion lostCopy(DataMover m) {
    MemorySegment src = pattern(64 << 10, 2);
    MemorySegment dst = arena.allocate(64 << 10);
    Completion c = m.submit(src, 0, dst, 0, 64 << 10, false);
    return c.await(WaitStrategy.park());
  }

  @Test
  void haltedDeviceFailsTheMoveAndTakesTheMoverOutOfService() throws IOException {
    tree("dedicated", OPCAP, null);
    try (MoverRegistry r = open()) {
      DataMover m = r.get(MoverKind.DSA);
      assertTrue(m.isAvailable(), m.unavailableReason());
      device.behaviour = FakeDsaDevice.Behaviour.SILENT;
      Files.writeString(sys.resolve("dsa0/state"), "halted\n");
      long t0 = System.nanoTime();
      Completion c = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> lostCopy(m),
          "a completion record that never comes must not be waited for forever");
      long ms = (System.nanoTime() - t0) / 1_000_000;
      assertEquals(Completion.State.FAILED, c.state());
      assertTrue(c.statusName().contains("NO_COMPLETION"), c.statusName());
      assertTrue(ms >= 100, "not before the bound (100 ms floor): " + ms + " ms");
      assertThrows(CopyFailedException.class, c::throwIfFailed);
      c.release();
      assertFalse(m.isAvailable(), "out of service");
      String why = m.unavailableReason();
      assertTrue(why.contains("no completion record") && why.contains("dsa0")
          && why.contains("halted"), why);
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> m.submit(pattern(64, 3), 0, arena.allocate(64), 0, 64, false));
      assertTrue(e.getMessage().contains("out of service"), e.getMessage());
      assertEquals(MoverKind.CPU, r.best(MoverKind.DSA, MoverKind.CPU).kind());
    }
  }

  @Test
  void softwareErrorOnTheQueueFdIsNamedInTheReason() throws IOException {
    tree("shared", OPCAP, null);
    try (MoverRegistry r = open()) {
      DataMover m = r.get(MoverKind.DSA);
      assertTrue(m.isAvailable(), m.unavailableReason());
      device.behaviour = FakeDsaDevice.Behaviour.SOFTWARE_ERROR;
      Files.writeString(sys.resolve("dsa0/errors"), "0x0000000000010103 0x0000000000000000"
          + " 0x0000000000000000 0x0000000000000000\n");
      Completion c = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> lostCopy(m));
      assertEquals(Completion.State.FAILED, c.state());
      c.release();
      String why = m.unavailableReason();
      assertTrue(why.contains("software error") && why.contains("0x0000000000010103"), why);
      assertTrue(why.contains("dsa0 enabled") && why.contains("wq0.0 enabled"), why);
    }
  }

  @Test
  void opCapWithoutBatchMeansOneDescriptorPerCopy() throws IOException {
    tree("shared", OPCAP_WITHOUT_BATCH, null);
    try (MoverRegistry r = open()) {
      DataMover m = r.get(MoverKind.DSA);
      assertTrue(m.isAvailable(), m.unavailableReason());
      assertEquals(1, m.maxBatchSize(), "the kernel clears BATCH where user batches are unsafe");
      MemorySegment src = pattern(4 * 4096, 4);
      MemorySegment dst = arena.allocate(4 * 4096);
      try (MoverSession s = m.session(Mode.PIPELINED, WaitStrategy.spin())) {
        for (int k = 0; k < 4; k++) {
          s.copy(src, k * 4096L, dst, k * 4096L, 4096, false);
        }
      }
      assertEquals(-1, src.mismatch(dst));
      assertEquals(0, device.batches.get(), "no BATCH descriptor written");
    }
  }

  @Test
  void opConfigDecidesWhatTheQueueRuns() throws IOException {
    // Per-WQ op_config (Linux 6.0+): MEMMOVE and NOOP allowed, BATCH not.
    tree("shared", OPCAP, "00000000,00000009");
    try (MoverRegistry r = open()) {
      DataMover m = r.get(MoverKind.DSA);
      assertTrue(m.isAvailable(), m.unavailableReason());
      assertEquals(1, m.maxBatchSize(), "op_config without BATCH");
      assertTrue(r.dsaScan().queues().get(0).toString().contains("no batches"),
          r.dsaScan().queues().get(0).toString());
    }
  }

  @Test
  void opConfigWithoutMemmoveMakesTheQueueUnusable() throws IOException {
    tree("shared", OPCAP, "00000000,00000003"); // NOOP and BATCH only
    try (MoverRegistry r = open()) {
      String why = r.get(MoverKind.DSA).unavailableReason();
      assertTrue(why.contains("op_config") && why.contains("MEMMOVE"), why);
    }
  }

  @Test
  void kernelWithoutTheWritePathIsExplainedWithItsBackports() throws IOException {
    tree("shared", OPCAP, null);
    int fd = TestLibc.fdWithoutWrite(); // write() -> EINVAL, like idxd before the write path
    try (MoverRegistry r = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false)
        .software(false).sysfsRoot(sys).devDir(dev).opener(p -> fd))) {
      String why = r.get(MoverKind.DSA).unavailableReason();
      assertTrue(why.contains("errno " + io.grpcshm.dsa.internal.Libc.EINVAL), why);
      for (String v : new String[] {"6.10", "6.1.91", "6.8.10", "6.9.1"}) {
        assertTrue(why.contains(v), v + " missing: " + why);
      }
      assertTrue(why.contains(System.getProperty("os.version")), "names this kernel: " + why);
    }
  }

  @Test
  void checksSayWhatRanAgainstTheQueue() throws IOException {
    tree("shared", OPCAP, null);
    try (MoverRegistry r = open()) {
      assertTrue(r.get(MoverKind.DSA).isAvailable(), r.get(MoverKind.DSA).unavailableReason());
      String checks = r.dsaChecks().toString();
      assertTrue(checks.contains("[ran]     sysfs discovery (device/queue state, mode, type, size,"
          + " op_cap): 1 device(s), 1 queue(s), 1 usable"), checks);
      assertTrue(checks.contains("[ran]     per-queue op_config (Linux 6.0+) and op_cap BATCH"
          + " bit: wq0.0: op_config absent (all device ops), batches on"), checks);
      assertTrue(checks.contains("[ran]     open + NOOP probe via write(): answered"), checks);
      assertTrue(checks.contains("[ran]     completion bound"), checks);
      assertTrue(checks.contains("[not run] copies on the device: no calibration copies"),
          checks);
    }
  }

  @Test
  void writeErrnosAreClassifiedAsTheKernelReturnsThem() {
    assertEquals(Portal.RETRY, DsaPortal.classify(io.grpcshm.dsa.internal.Libc.EAGAIN,
        Idxd.OP_MEMMOVE), "EAGAIN: shared queue full (ENQCMDS retries exhausted)");
    assertEquals(-io.grpcshm.dsa.internal.Libc.EBUSY, DsaPortal.classify(
        io.grpcshm.dsa.internal.Libc.EBUSY, Idxd.OP_MEMMOVE),
        "write() never answers EBUSY for a full queue: an error, not a retry");
    assertEquals(Portal.BATCH_UNSUPPORTED, DsaPortal.classify(
        io.grpcshm.dsa.internal.Libc.EINVAL, Idxd.OP_BATCH));
    assertEquals(-io.grpcshm.dsa.internal.Libc.EINVAL, DsaPortal.classify(
        io.grpcshm.dsa.internal.Libc.EINVAL, Idxd.OP_NOOP));
  }
}
