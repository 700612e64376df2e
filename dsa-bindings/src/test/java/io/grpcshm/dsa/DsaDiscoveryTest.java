package io.grpcshm.dsa;

import static org.junit.jupiter.api.Assertions.*;

import io.grpcshm.dsa.internal.Libc;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The DSA mover's discovery, open and probe failures, on fake trees (no DSA here). */
class DsaDiscoveryTest {
  @TempDir Path tmp;

  private Path sys;
  private Path dev;

  private void tree(String mode) throws IOException {
    sys = Files.createDirectories(tmp.resolve("sys"));
    dev = Files.createDirectories(tmp.resolve("dev"));
    Path d = Files.createDirectories(sys.resolve("dsa0"));
    Files.writeString(d.resolve("state"), "enabled");
    Files.writeString(d.resolve("gen_cap"), "0x40915f0107");
    Files.writeString(d.resolve("op_cap"), "00000000,003f03ff");
    Path q = Files.createDirectories(sys.resolve("wq0.0"));
    Files.writeString(q.resolve("state"), "enabled");
    Files.writeString(q.resolve("mode"), mode);
    Files.writeString(q.resolve("type"), "user");
    Files.writeString(q.resolve("size"), "16");
    Files.writeString(q.resolve("max_transfer_size"), "2097152");
    Files.writeString(q.resolve("max_batch_size"), "32");
    Files.writeString(dev.resolve("wq0.0"), "");
  }

  private MoverRegistry.Options opts() {
    return MoverRegistry.Options.defaults().calibrate(false).software(false).sysfsRoot(sys)
        .devDir(dev).probeTimeout(Duration.ofMillis(30));
  }

  @Test
  void absentDsaSaysWhyAndRefusesWork() throws IOException {
    sys = tmp.resolve("no-such-bus");
    dev = tmp.resolve("no-dev");
    try (MoverRegistry r = MoverRegistry.open(opts()); Arena a = Arena.ofConfined()) {
      DataMover dsa = r.get(MoverKind.DSA);
      assertFalse(dsa.isAvailable());
      assertTrue(dsa.unavailableReason().contains("does not exist"), dsa.unavailableReason());
      assertTrue(r.find(MoverKind.DSA).isEmpty());
      assertEquals(MoverKind.CPU, r.best(MoverKind.DSA, MoverKind.SOFTWARE).kind());
      MemorySegment s = a.allocate(64);
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> dsa.submit(s, 0, a.allocate(64), 0, 64, false));
      assertTrue(e.getMessage().contains("unavailable"));
      assertThrows(IllegalStateException.class, () -> dsa.session(Mode.SYNC, WaitStrategy.spin()));
    }
  }

  @Test
  void noPermissionIsExplained() throws IOException {
    tree("shared");
    try (MoverRegistry r = MoverRegistry.open(opts().opener(p -> -Libc.EACCES))) {
      String why = r.get(MoverKind.DSA).unavailableReason();
      assertTrue(why.contains("wq0.0") && why.contains("no permission"), why);
      assertTrue(why.contains("errno 13"), why);
    }
  }

  @Test
  void busyDedicatedQueueIsExplained() throws IOException {
    tree("dedicated");
    try (MoverRegistry r = MoverRegistry.open(opts().opener(p -> -Libc.EBUSY))) {
      String why = r.get(MoverKind.DSA).unavailableReason();
      assertTrue(why.contains("dedicated queue is open in another process"), why);
    }
  }

  @Test
  void queueThatNeverCompletesFailsTheNoopProbe() throws IOException {
    tree("shared");
    // The "device node" is a plain file: write() succeeds, no completion record ever arrives.
    Path fake = tmp.resolve("sink");
    Files.createFile(fake);
    try (MoverRegistry r = MoverRegistry.open(opts().opener(
        p -> Libc.open(fake.toString(), Libc.O_RDWR | Libc.O_CLOEXEC)))) {
      String why = r.get(MoverKind.DSA).unavailableReason();
      assertTrue(why.contains("NOOP probe: no completion record within 30 ms"), why);
    }
    assertEquals(64, Files.size(fake), "exactly one 64-byte descriptor was written");
    byte[] d = Files.readAllBytes(fake);
    assertEquals(0, d[7], "opcode NOOP");
    assertEquals(0x0C, d[4], "flags CRAV|RCR");
  }

  @Test
  void writeErrorsAreExplained() throws IOException {
    tree("shared");
    Path fake = tmp.resolve("ro");
    Files.createFile(fake);
    // Opened read-only: write() fails with EBADF, which the probe must report, not hide.
    try (MoverRegistry r = MoverRegistry.open(opts().opener(
        p -> Libc.open(fake.toString(), Libc.O_CLOEXEC)))) {
      String why = r.get(MoverKind.DSA).unavailableReason();
      assertTrue(why.contains("write() failed") && why.contains("errno 9"), why);
    }
  }
}
