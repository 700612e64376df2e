package io.grpcshm.dsa.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Reads the idxd driver's sysfs view ({@code /sys/bus/dsa/devices/{dsaN,wqN.M}}) and says which
 * work queues a user process could use, and why the others cannot. Both roots are parameters so
 * tests can point them at fake trees.
 */
public final class IdxdSysfs {
  public static final Path DEFAULT_SYSFS = Path.of("/sys/bus/dsa/devices");
  public static final Path DEFAULT_DEV = Path.of("/dev/dsa");
  /** major.minor[.patch] at the start of a kernel release ("6.8.0-45-generic"). */
  private static final Pattern RELEASE = Pattern.compile("^(\\d+)\\.(\\d+)(?:\\.(\\d+))?");

  private IdxdSysfs() {}

  /** One DSA device ({@code dsaN}). {@code opCap} is null when the file is absent. */
  public record Device(String name, String state, long genCap, BitSet opCap, long maxTransferSize,
      int maxBatchSize) {
    public boolean cacheControl() { return (genCap & Idxd.GENCAP_CACHE_CONTROL_MEM) != 0; }

    public boolean supports(int opcode) { return opCap == null || opCap.get(opcode); }
  }

  /**
   * One work queue ({@code wqN.M}) and the verdict on it. {@code opConfig} is the queue's own
   * operation set (Linux 6.0+, devices with per-queue op config); null when the file is absent,
   * meaning every operation the device has. {@code batches} says whether BATCH descriptors may
   * be submitted; {@code batchNote} why not.
   */
  public record WorkQueue(String name, Device device, String state, String mode, String type,
      int size, long maxTransferSize, int maxBatchSize, BitSet opConfig, boolean batches,
      String batchNote, Path devNode, boolean usable, String reason) {
    public boolean shared() { return "shared".equals(mode); }

    /** Whether this queue runs {@code opcode}: the device has it and op_config allows it. */
    public boolean runs(int opcode) {
      return (device == null || device.supports(opcode))
          && (opConfig == null || opConfig.get(opcode));
    }

    @Override
    public String toString() {
      return name + " [" + mode + ", type=" + type + ", state=" + state + ", size=" + size
          + ", max_transfer_size=" + maxTransferSize + ", max_batch_size=" + maxBatchSize
          + (batches ? "" : ", no batches: " + batchNote)
          + (opConfig == null ? "" : ", op_config read")
          + (device != null && device.cacheControl() ? ", cache-control" : "") + "]"
          + (usable ? "" : " unusable: " + reason);
    }
  }

  /** What the scan found. {@code reason} explains an empty {@link #best()}. */
  public record Scan(List<Device> devices, List<WorkQueue> queues, String reason) {
    /** Usable queues, best first: shared before dedicated (a dedicated queue is exclusive). */
    public List<WorkQueue> usable() {
      return queues.stream().filter(WorkQueue::usable)
          .sorted(Comparator.comparing((WorkQueue q) -> !q.shared())
              .thenComparing(Comparator.comparingInt(WorkQueue::size).reversed())
              .thenComparing(WorkQueue::name))
          .toList();
    }

    public Optional<WorkQueue> best() { return usable().stream().findFirst(); }
  }

  public static Scan scan(Path sysfsRoot, Path devDir) {
    if (!Files.isDirectory(sysfsRoot)) {
      return new Scan(List.of(), List.of(), "no DSA: " + sysfsRoot
          + " does not exist (no idxd driver loaded, or no DSA device on this host)");
    }
    List<Device> devices = new ArrayList<>();
    List<Path> wqDirs = new ArrayList<>();
    try (Stream<Path> s = Files.list(sysfsRoot)) {
      for (Path p : s.sorted().toList()) {
        String n = p.getFileName().toString();
        if (n.matches("dsa\\d+")) {
          devices.add(readDevice(p));
        } else if (n.matches("wq\\d+\\.\\d+")) {
          wqDirs.add(p);
        }
      }
    } catch (IOException e) {
      return new Scan(List.of(), List.of(), "cannot list " + sysfsRoot + ": " + e);
    }
    if (devices.isEmpty()) {
      return new Scan(devices, List.of(), "no DSA: no dsaN device under " + sysfsRoot
          + " (only IAA or nothing is bound to the idxd driver)");
    }
    List<WorkQueue> queues = new ArrayList<>();
    for (Path p : wqDirs) {
      queues.add(readQueue(p, devices, devDir));
    }
    String reason = "";
    if (queues.isEmpty()) {
      reason = "DSA device(s) present but no work queue configured (use accel-config)";
    } else if (queues.stream().noneMatch(WorkQueue::usable)) {
      StringBuilder b = new StringBuilder("no usable DSA work queue:");
      queues.forEach(q -> b.append(' ').append(q.name()).append(": ").append(q.reason())
          .append(';'));
      reason = b.substring(0, b.length() - 1);
    }
    return new Scan(devices, queues, reason);
  }

  private static Device readDevice(Path p) {
    String name = p.getFileName().toString();
    return new Device(name, read(p, "state").orElse("unknown"),
        parseHex(read(p, "gen_cap").orElse("0")),
        read(p, "op_cap").map(IdxdSysfs::parseOpCap).orElse(null),
        parseLong(read(p, "max_transfer_size").orElse("0")),
        (int) parseLong(read(p, "max_batch_size").orElse("0")));
  }

  private static WorkQueue readQueue(Path p, List<Device> devices, Path devDir) {
    String name = p.getFileName().toString();
    String devName = "dsa" + name.substring(2, name.indexOf('.'));
    Device dev = devices.stream().filter(d -> d.name().equals(devName)).findFirst().orElse(null);
    String state = read(p, "state").orElse("unknown");
    String mode = read(p, "mode").orElse("unknown");
    String type = read(p, "type").orElse("unknown");
    int size = (int) parseLong(read(p, "size").orElse("0"));
    long maxXfer = parseLong(read(p, "max_transfer_size")
        .orElse(dev == null ? "0" : Long.toString(dev.maxTransferSize())));
    int maxBatch = (int) parseLong(read(p, "max_batch_size")
        .orElse(dev == null ? "0" : Integer.toString(dev.maxBatchSize())));
    BitSet opConfig = read(p, "op_config").map(IdxdSysfs::parseOpCap).orElse(null);
    Path node = devDir.resolve(name);
    String reason = null;
    if (dev == null) {
      reason = "its device " + devName + " is not listed";
    } else if (!"enabled".equals(dev.state())) {
      reason = "device " + devName + " is " + dev.state();
    } else if (!"enabled".equals(state)) {
      reason = "queue is " + state;
    } else if (!"user".equals(type)) {
      reason = "queue type is '" + type + "' (kernel/mdev queues are not for user space)";
    } else if (!"shared".equals(mode) && !"dedicated".equals(mode)) {
      reason = "unknown mode '" + mode + "'";
    } else if (size <= 0) {
      reason = "queue size is 0";
    } else if (!dev.supports(Idxd.OP_MEMMOVE) || !dev.supports(Idxd.OP_NOOP)) {
      reason = "device op_cap lacks MEMMOVE or NOOP";
    } else if (opConfig != null
        && (!opConfig.get(Idxd.OP_MEMMOVE) || !opConfig.get(Idxd.OP_NOOP))) {
      reason = "the queue's op_config does not enable MEMMOVE and NOOP";
    } else if (maxXfer <= 0) {
      reason = "max_transfer_size is 0";
    } else if (!Files.exists(node)) {
      reason = "device node " + node + " does not exist";
    }
    // The kernel clears BATCH in op_cap where user batches are unsafe (and refuses them in
    // write() with EINVAL); a queue's op_config may leave it out too.
    String batchNote = "";
    if (dev != null && !dev.supports(Idxd.OP_BATCH)) {
      batchNote = "device op_cap lacks BATCH";
    } else if (opConfig != null && !opConfig.get(Idxd.OP_BATCH)) {
      batchNote = "op_config does not enable BATCH";
    } else if (maxBatch < 2) {
      batchNote = "max_batch_size " + maxBatch;
    }
    return new WorkQueue(name, dev, state, mode, type, size, maxXfer, maxBatch, opConfig,
        batchNote.isEmpty(), batchNote, node, reason == null, reason == null ? "" : reason);
  }

  /**
   * Re-reads the device's and the queue's state (and the device's software-error registers)
   * now, for a mover that stopped getting completion records: "device dsa0 halted, queue wq0.0
   * enabled", plus {@code errors} when any is set.
   */
  public static String currentState(Path sysfsRoot, WorkQueue wq) {
    String dev = wq.device() == null ? "dsa?" : wq.device().name();
    Path d = sysfsRoot.resolve(dev);
    Path q = sysfsRoot.resolve(wq.name());
    StringBuilder b = new StringBuilder();
    b.append("device ").append(dev).append(' ')
        .append(read(d, "state").orElse("(state unreadable)"))
        .append(", queue ").append(wq.name()).append(' ')
        .append(read(q, "state").orElse("(state unreadable)"));
    read(d, "errors").filter(IdxdSysfs::anyBitSet)
        .ifPresent(e -> b.append(", ").append(dev).append("/errors ").append(e));
    return b.toString();
  }

  /** Whether a line of hex words (sysfs {@code errors}) has any bit set. */
  private static boolean anyBitSet(String words) {
    for (String w : words.trim().split("[\\s,]+")) {
      if (!w.isEmpty() && parseHex(w) != 0) {
        return true;
      }
    }
    return false;
  }

  /**
   * What the kernel release says about the write() submission path (commit 6827738dc684:
   * mainline 6.10, stable 6.1.91, 6.8.10 and 6.9.1). Only a hint: distribution kernels carry
   * backports under older numbers, so the NOOP probe decides.
   */
  public static String writePathNote(String release) {
    Matcher m = RELEASE.matcher(release);
    String where = "idxd write() submission is in mainline 6.10+ and stable 6.1.91+, 6.8.10+,"
        + " 6.9.1+";
    if (!m.find()) {
      return where + "; kernel release '" + release + "' not understood";
    }
    int major = Integer.parseInt(m.group(1));
    int minor = Integer.parseInt(m.group(2));
    int patch = m.group(3) == null ? 0 : Integer.parseInt(m.group(3));
    boolean has = major > 6 || (major == 6 && (minor >= 10 || (minor == 9 && patch >= 1)
        || (minor == 8 && patch >= 10) || (minor == 1 && patch >= 91)));
    return where + "; kernel " + release + (has ? " is one of those by its version"
        : " predates it unless its distribution backported commit 6827738dc684");
  }

  private static Optional<String> read(Path dir, String file) {
    Path f = dir.resolve(file);
    try {
      return Files.isRegularFile(f) ? Optional.of(Files.readString(f).trim()) : Optional.empty();
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  static long parseLong(String s) {
    try {
      return s.startsWith("0x") ? Long.parseUnsignedLong(s.substring(2), 16) : Long.parseLong(s);
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  static long parseHex(String s) {
    String t = s.startsWith("0x") ? s.substring(2) : s;
    try {
      return Long.parseUnsignedLong(t, 16);
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /**
   * Parses {@code op_cap}. Current kernels print a bitmap ({@code %*pb}): comma-separated
   * 32-bit hex words, most significant first. Older kernels printed four 64-bit words with a
   * {@code 0x} prefix, separated by spaces, least significant first.
   */
  public static BitSet parseOpCap(String s) {
    BitSet bits = new BitSet();
    String t = s.trim();
    if (t.isEmpty()) {
      return bits;
    }
    if (t.contains("0x")) {
      String[] words = t.split("[\\s,]+");
      for (int w = 0; w < words.length; w++) {
        long v = parseHex(words[w]);
        for (int b = 0; b < 64; b++) {
          if ((v >>> b & 1) != 0) {
            bits.set(w * 64 + b);
          }
        }
      }
    } else {
      String[] words = t.split(",");
      for (int i = 0; i < words.length; i++) {
        int w = words.length - 1 - i;
        long v = parseHex(words[i]);
        for (int b = 0; b < 32; b++) {
          if ((v >>> b & 1) != 0) {
            bits.set(w * 32 + b);
          }
        }
      }
    }
    return bits;
  }
}
