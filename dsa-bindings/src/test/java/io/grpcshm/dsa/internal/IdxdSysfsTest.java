package io.grpcshm.dsa.internal;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.BitSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Discovery against fake sysfs trees. */
class IdxdSysfsTest {
  @TempDir Path tmp;

  /** A fake /sys/bus/dsa/devices + /dev/dsa builder. */
  static final class FakeTree {
    final Path sys;
    final Path dev;

    FakeTree(Path root) throws IOException {
      sys = Files.createDirectories(root.resolve("sys/bus/dsa/devices"));
      dev = Files.createDirectories(root.resolve("dev/dsa"));
    }

    FakeTree device(String name, String state, String genCap, String opCap) throws IOException {
      Path d = Files.createDirectories(sys.resolve(name));
      Files.writeString(d.resolve("state"), state + "\n");
      Files.writeString(d.resolve("gen_cap"), genCap + "\n");
      if (opCap != null) {
        Files.writeString(d.resolve("op_cap"), opCap + "\n");
      }
      Files.writeString(d.resolve("max_transfer_size"), "2147483648\n");
      Files.writeString(d.resolve("max_batch_size"), "1024\n");
      return this;
    }

    FakeTree wq(String name, String state, String mode, String type, int size, boolean node)
        throws IOException {
      Path d = Files.createDirectories(sys.resolve(name));
      Files.writeString(d.resolve("state"), state + "\n");
      Files.writeString(d.resolve("mode"), mode + "\n");
      Files.writeString(d.resolve("type"), type + "\n");
      Files.writeString(d.resolve("size"), size + "\n");
      Files.writeString(d.resolve("max_transfer_size"), "2097152\n");
      Files.writeString(d.resolve("max_batch_size"), "32\n");
      if (node) {
        Files.createFile(dev.resolve(name));
      }
      return this;
    }
  }

  /** Sapphire Rapids-like values: gen_cap with cache control, op_cap bitmap format. */
  static final String GENCAP = "0x40915f0107";
  static final String OPCAP = "00000000,00000000,00000000,00000000,00000000,00000000,00000001,003f03ff";

  @Test
  void noDsaAtAll() {
    IdxdSysfs.Scan s = IdxdSysfs.scan(tmp.resolve("nope"), tmp.resolve("dev"));
    assertTrue(s.best().isEmpty());
    assertTrue(s.reason().startsWith("no DSA"), s.reason());
  }

  @Test
  void busWithoutDsaDevices() throws IOException {
    FakeTree t = new FakeTree(tmp);
    Files.createDirectories(t.sys.resolve("iax1"));
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    assertTrue(s.best().isEmpty());
    assertTrue(s.reason().contains("no dsaN device"), s.reason());
  }

  @Test
  void deviceWithoutQueues() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, OPCAP);
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    assertTrue(s.reason().contains("no work queue configured"), s.reason());
  }

  @Test
  void disabledQueueIsReported() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, OPCAP)
        .wq("wq0.0", "disabled", "shared", "user", 16, true);
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    assertTrue(s.best().isEmpty());
    assertEquals("queue is disabled", s.queues().get(0).reason());
    assertTrue(s.reason().contains("wq0.0: queue is disabled"), s.reason());
  }

  @Test
  void disabledDeviceIsReported() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "disabled", GENCAP, OPCAP)
        .wq("wq0.0", "enabled", "shared", "user", 16, true);
    assertEquals("device dsa0 is disabled",
        IdxdSysfs.scan(t.sys, t.dev).queues().get(0).reason());
  }

  @Test
  void kernelQueueIsNotForUserSpace() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, OPCAP)
        .wq("wq0.0", "enabled", "dedicated", "kernel", 16, false);
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    assertTrue(s.best().isEmpty());
    assertTrue(s.queues().get(0).reason().contains("type is 'kernel'"));
  }

  @Test
  void missingDeviceNode() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, OPCAP)
        .wq("wq0.0", "enabled", "shared", "user", 16, false);
    assertTrue(IdxdSysfs.scan(t.sys, t.dev).queues().get(0).reason().contains("does not exist"));
  }

  @Test
  void sharedPreferredOverDedicatedAndAttributesRead() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, OPCAP)
        .wq("wq0.0", "enabled", "dedicated", "user", 64, true)
        .wq("wq0.1", "enabled", "shared", "user", 16, true)
        .wq("wq0.2", "enabled", "shared", "kernel", 16, true);
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    assertEquals(2, s.usable().size());
    IdxdSysfs.WorkQueue best = s.best().orElseThrow();
    assertEquals("wq0.1", best.name());
    assertTrue(best.shared());
    assertEquals(16, best.size());
    assertEquals(2097152, best.maxTransferSize());
    assertEquals(32, best.maxBatchSize());
    assertEquals(t.dev.resolve("wq0.1"), best.devNode());
    assertTrue(best.device().cacheControl());
    assertEquals("wq0.0", s.usable().get(1).name());
    assertEquals("", s.reason());
  }

  @Test
  void deviceWithoutMemmoveIsUnusable() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", "0x0", "00000000,00000001")
        .wq("wq0.0", "enabled", "shared", "user", 16, true);
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    assertTrue(s.queues().get(0).reason().contains("op_cap lacks MEMMOVE"));
    assertFalse(s.devices().get(0).cacheControl());
  }

  @Test
  void opCapBatchBitAndPerQueueOpConfigAreRead() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, "00000000,003f03fd")
        .wq("wq0.0", "enabled", "shared", "user", 16, true)
        .wq("wq0.1", "enabled", "shared", "user", 16, true);
    IdxdSysfs.Scan s = IdxdSysfs.scan(t.sys, t.dev);
    IdxdSysfs.WorkQueue q = s.queues().get(0);
    assertTrue(q.usable(), q.reason());
    assertFalse(q.batches(), "op_cap without BATCH: the kernel deems user batches unsafe");
    assertEquals("device op_cap lacks BATCH", q.batchNote());
    assertNull(q.opConfig(), "no op_config file: every device operation");

    FakeTree u = new FakeTree(tmp.resolve("u")).device("dsa0", "enabled", GENCAP, OPCAP)
        .wq("wq0.0", "enabled", "shared", "user", 16, true)
        .wq("wq0.1", "enabled", "shared", "user", 16, true)
        .wq("wq0.2", "enabled", "shared", "user", 16, true);
    Files.writeString(u.sys.resolve("wq0.0/op_config"), "00000000,00000009\n"); // NOOP, MEMMOVE
    Files.writeString(u.sys.resolve("wq0.1/op_config"), "00000000,0000000b\n"); // + BATCH
    Files.writeString(u.sys.resolve("wq0.2/op_config"), "00000000,00000001\n"); // NOOP only
    s = IdxdSysfs.scan(u.sys, u.dev);
    assertTrue(s.queues().get(0).usable());
    assertFalse(s.queues().get(0).batches());
    assertEquals("op_config does not enable BATCH", s.queues().get(0).batchNote());
    assertTrue(s.queues().get(0).runs(Idxd.OP_MEMMOVE));
    assertFalse(s.queues().get(0).runs(Idxd.OP_COMPARE), "device has it, op_config not");
    assertTrue(s.queues().get(1).batches());
    assertFalse(s.queues().get(2).usable());
    assertTrue(s.queues().get(2).reason().contains("op_config"), s.queues().get(2).reason());
  }

  @Test
  void writePathNoteKnowsMainlineAndTheStableBackports() {
    for (String has : new String[] {"6.10.0", "6.12.8-200.fc41.x86_64", "7.0", "6.9.1",
        "6.8.10-arch1-1", "6.1.91", "6.1.128-lts"}) {
      assertTrue(IdxdSysfs.writePathNote(has).contains("is one of those"), has);
    }
    for (String lacks : new String[] {"6.9.0", "6.8.9", "6.8.0-45-generic", "6.6.30", "6.1.90",
        "5.15.0-105-generic", "4.18.0-553.el8_10.x86_64"}) {
      String note = IdxdSysfs.writePathNote(lacks);
      assertTrue(note.contains("predates it unless its distribution backported"), lacks);
      assertTrue(note.contains("6.10+") && note.contains("6.1.91+") && note.contains("6.8.10+")
          && note.contains("6.9.1+"), note);
    }
    assertTrue(IdxdSysfs.writePathNote("weird").contains("not understood"));
  }

  @Test
  void currentStateRereadsDeviceQueueAndErrors() throws IOException {
    FakeTree t = new FakeTree(tmp).device("dsa0", "enabled", GENCAP, OPCAP)
        .wq("wq0.0", "enabled", "dedicated", "user", 16, true);
    IdxdSysfs.WorkQueue q = IdxdSysfs.scan(t.sys, t.dev).queues().get(0);
    assertEquals("device dsa0 enabled, queue wq0.0 enabled", IdxdSysfs.currentState(t.sys, q));
    Files.writeString(t.sys.resolve("dsa0/state"), "halted\n");
    Files.writeString(t.sys.resolve("wq0.0/state"), "disabled\n");
    Files.writeString(t.sys.resolve("dsa0/errors"), "0x0 0x0 0x0 0x0\n");
    assertEquals("device dsa0 halted, queue wq0.0 disabled", IdxdSysfs.currentState(t.sys, q),
        "all-zero errors are not worth a mention");
    Files.writeString(t.sys.resolve("dsa0/errors"), "0x0000000000010103 0x0 0x0 0x0\n");
    assertTrue(IdxdSysfs.currentState(t.sys, q).endsWith("dsa0/errors 0x0000000000010103 0x0"
        + " 0x0 0x0"), IdxdSysfs.currentState(t.sys, q));
  }

  @Test
  void opCapParsesBothKernelFormats() {
    BitSet bitmap = IdxdSysfs.parseOpCap(OPCAP);
    for (int op : new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x15, 0x20}) {
      assertTrue(bitmap.get(op), "op " + op);
    }
    assertFalse(bitmap.get(0x0a));
    assertFalse(bitmap.get(0x21));
    BitSet legacy = IdxdSysfs.parseOpCap("0x1003f03ff 0x0 0x0 0x0");
    assertEquals(bitmap, legacy);
    assertTrue(IdxdSysfs.parseOpCap("").isEmpty());
  }
}
