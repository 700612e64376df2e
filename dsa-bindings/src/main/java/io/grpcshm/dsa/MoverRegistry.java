package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.DsaCheck;
import io.grpcshm.dsa.internal.EngineFaults;
import io.grpcshm.dsa.internal.IdxdSysfs;
import io.grpcshm.dsa.internal.Libc;
import io.grpcshm.dsa.internal.SoftwareCopyEngine;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Entry point: finds the movers this host has (CPU always; the parallel CPU copy where there
 * are at least two cores; the software engine unless disabled; DSA if a usable user work queue
 * answers a NOOP), calibrates them, and says why any is missing.
 *
 * <pre>{@code
 * try (MoverRegistry movers = MoverRegistry.open()) {
 *   DataMover m = movers.best(MoverKind.DSA, MoverKind.SOFTWARE, MoverKind.CPU);
 *   m.copy(src, 0, dst, 0, src.byteSize(), false, WaitStrategy.hybrid());
 * }
 * }</pre>
 */
public final class MoverRegistry implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(MoverRegistry.class.getName());

  /** Discovery and calibration settings; defaults suit production. */
  public static final class Options {
    Path sysfsRoot = IdxdSysfs.DEFAULT_SYSFS;
    Path devDir = IdxdSysfs.DEFAULT_DEV;
    int softwareWorkers = Math.max(1, Runtime.getRuntime().availableProcessors() - 1);
    int softwareQueueDepth = 256;
    long softwareChunkBytes = 1 << 20;
    boolean software = true;
    int parallelThreads = Runtime.getRuntime().availableProcessors();
    boolean dsa = true;
    boolean calibrate = true;
    long[] calibrationSizes = Calibrator.DEFAULT_SIZES;
    int calibrationReps = 9;
    Duration probeTimeout = Duration.ofMillis(200);
    DeviceOpener opener = DeviceOpener.LIBC;
    EngineFaults softwareFaults = EngineFaults.NONE;

    public static Options defaults() { return new Options(); }

    /** Where the idxd bus lives (tests point this at a fake tree). */
    public Options sysfsRoot(Path p) { this.sysfsRoot = p; return this; }

    /** Where the work-queue device nodes live. */
    public Options devDir(Path p) { this.devDir = p; return this; }

    public Options softwareWorkers(int n) { this.softwareWorkers = n; return this; }

    public Options softwareQueueDepth(int n) { this.softwareQueueDepth = n; return this; }

    public Options softwareChunkBytes(long n) { this.softwareChunkBytes = n; return this; }

    public Options software(boolean enable) { this.software = enable; return this; }

    /**
     * Threads sharing a {@link MoverKind#PARALLEL} copy, the caller included (default: the
     * available processors); below 2 the mover is unavailable.
     */
    public Options parallelThreads(int n) { this.parallelThreads = n; return this; }

    public Options dsa(boolean enable) { this.dsa = enable; return this; }

    /** Calibrate at start-up (about 0.1-0.5 s per mover); otherwise hybrid waits just poll. */
    public Options calibrate(boolean enable) { this.calibrate = enable; return this; }

    public Options calibrationSizes(long... sizes) {
      if (sizes.length < 2) {
        throw new IllegalArgumentException("need at least two calibration sizes");
      }
      this.calibrationSizes = sizes.clone();
      return this;
    }

    public Options calibrationReps(int reps) { this.calibrationReps = reps; return this; }

    public Options probeTimeout(Duration d) { this.probeTimeout = d; return this; }

    Options opener(DeviceOpener o) { this.opener = o; return this; }

    /** Failures the software engine injects (tests of the code that handles mover failures). */
    Options softwareFaults(EngineFaults f) { this.softwareFaults = f; return this; }
  }

  private final Map<MoverKind, DataMover> movers = new EnumMap<>(MoverKind.class);
  private final IdxdSysfs.Scan scan;
  private final List<DsaCheck> dsaChecks = new ArrayList<>();

  private MoverRegistry(Options o) {
    CpuMover cpu = new CpuMover();
    movers.put(MoverKind.CPU, cpu);
    SoftwareCopyEngine engine = null;
    if (o.software) {
      engine = new SoftwareCopyEngine(o.softwareWorkers,
          o.softwareQueueDepth, o.softwareChunkBytes, o.softwareFaults);
      movers.put(MoverKind.SOFTWARE,
          new DescriptorMover(MoverKind.SOFTWARE, new SoftwarePortal(engine), 64));
    } else {
      movers.put(MoverKind.SOFTWARE, new UnavailableMover(MoverKind.SOFTWARE, "disabled"));
    }
    movers.put(MoverKind.PARALLEL, o.parallelThreads >= 2 ? new ParallelCpuMover(o.parallelThreads)
        : new UnavailableMover(MoverKind.PARALLEL, o.parallelThreads + " thread(s): needs at"
            + " least 2 (one CPU)"));
    String kernel = System.getProperty("os.version");
    dsaChecks.add(new DsaCheck("kernel write() submission path (mainline 6.10; stable 6.1.91,"
        + " 6.8.10, 6.9.1)", true, IdxdSysfs.writePathNote(kernel)));
    if (o.dsa) {
      scan = IdxdSysfs.scan(o.sysfsRoot, o.devDir);
      movers.put(MoverKind.DSA, openDsa(scan, o, dsaChecks));
    } else {
      scan = new IdxdSysfs.Scan(List.of(), List.of(), "disabled");
      movers.put(MoverKind.DSA, new UnavailableMover(MoverKind.DSA, "disabled"));
      dsaChecks.add(new DsaCheck("sysfs discovery", false, "DSA disabled by options"));
    }
    for (DataMover m : movers.values()) {
      if (!m.isAvailable()) {
        LOG.log(Level.INFO, "{0} mover unavailable: {1}",
            new Object[] {m.kind(), m.unavailableReason()});
      } else if (o.calibrate && m instanceof AbstractMover am) {
        try {
          am.calibration(Calibrator.calibrate(am, o.calibrationSizes, o.calibrationReps));
        } catch (RuntimeException e) {
          // A device can fail here first (and go out of service): that is no reason to fail
          // the whole registry; the mover says why it is unavailable.
          LOG.log(Level.WARNING, m.kind() + " calibration failed; " + (m.isAvailable()
              ? "using default predictions" : m.unavailableReason()), e);
          am.calibration(Calibration.fallback("calibration failed: " + e.getMessage()));
        }
      }
    }
    DataMover dsa = movers.get(MoverKind.DSA);
    boolean armed = dsa instanceof DescriptorMover && dsa.isAvailable();
    dsaChecks.add(new DsaCheck("completion bound (max(" + Portal.DEVICE_TIMEOUT_FLOOR_NANOS
        / 1_000_000 + " ms, " + DescriptorMover.TIMEOUT_FACTOR + " x predicted)), then sysfs"
        + " state + queue fd poll, out of service", armed, armed
            ? "armed on " + dsa.description() : "no DSA mover to watch"));
    boolean copied = armed && dsa.calibration().measured();
    dsaChecks.add(new DsaCheck("copies on the device", copied, copied
        ? "calibration copies completed on the device"
        : armed ? "no calibration copies (calibration off or rejected)"
        : "no DSA work queue here: the descriptor path ran only against the software engine"
            + " and fake devices in tests"));
    dsaChecks.add(new DsaCheck("page-fault resume (compiled touch), batch element walk"
        + " (BATCH_PAGE_FAULT, CRA_XLAT), >= 4 GiB element splits", false,
        "unit tests only (software-engine fault injection, mincore); not a host check"));
  }

  public static MoverRegistry open() { return new MoverRegistry(Options.defaults()); }

  public static MoverRegistry open(Options options) { return new MoverRegistry(options); }

  /**
   * Opens the first usable work queue that answers a NOOP; otherwise says why none did. Adds
   * what it checked to {@code checks}.
   */
  static DataMover openDsa(IdxdSysfs.Scan scan, Options o, List<DsaCheck> checks) {
    checks.add(new DsaCheck("sysfs discovery (device/queue state, mode, type, size, op_cap)",
        true, scan.devices().size() + " device(s), " + scan.queues().size() + " queue(s), "
            + scan.usable().size() + " usable" + (scan.reason().isEmpty() ? ""
            : " - " + scan.reason())));
    List<String> ops = new ArrayList<>();
    for (IdxdSysfs.WorkQueue q : scan.queues()) {
      ops.add(q.name() + ": op_config " + (q.opConfig() == null ? "absent (all device ops)"
          : "read") + ", batches " + (q.batches() ? "on" : "off (" + q.batchNote() + ")"));
    }
    checks.add(new DsaCheck("per-queue op_config (Linux 6.0+) and op_cap BATCH bit",
        !ops.isEmpty(), ops.isEmpty() ? "no queue to read" : String.join("; ", ops)));
    List<IdxdSysfs.WorkQueue> usable = scan.usable();
    if (usable.isEmpty()) {
      checks.add(new DsaCheck("open + NOOP probe via write()", false, "no usable queue"));
      return new UnavailableMover(MoverKind.DSA, scan.reason());
    }
    if (!Libc.available()) {
      checks.add(new DsaCheck("open + NOOP probe via write()", false,
          Libc.unavailableReason()));
      return new UnavailableMover(MoverKind.DSA, Libc.unavailableReason());
    }
    DataMover found = openFirst(usable, o);
    checks.add(new DsaCheck("open + NOOP probe via write()", true, found.isAvailable()
        ? "answered: " + found.description() : found.unavailableReason()));
    return found;
  }

  private static DataMover openFirst(List<IdxdSysfs.WorkQueue> usable, Options o) {
    List<String> why = new ArrayList<>();
    for (IdxdSysfs.WorkQueue wq : usable) {
      int fd = o.opener.open(wq.devNode());
      if (fd < 0) {
        int errno = -fd;
        String hint = switch (errno) {
          case Libc.EACCES, Libc.EPERM -> " (no permission: grant this user access to "
              + wq.devNode() + ", e.g. a group with rw on /dev/dsa)";
          case Libc.EBUSY -> " (a dedicated queue is open in another process)";
          default -> "";
        };
        why.add(wq.name() + ": open(" + wq.devNode() + ") failed: " + Libc.strerror(errno)
            + hint);
        continue;
      }
      DescriptorMover m = new DescriptorMover(MoverKind.DSA,
          new DsaPortal(wq, fd, o.sysfsRoot), 64);
      String probe = m.probe(o.probeTimeout);
      if (probe == null) {
        return m;
      }
      m.close();
      why.add(wq.name() + ": " + probe);
    }
    return new UnavailableMover(MoverKind.DSA, "no DSA work queue answered: "
        + String.join("; ", why));
  }

  /** Every mover, in {@link MoverKind} order; unavailable ones say why. */
  public List<DataMover> movers() { return List.copyOf(movers.values()); }

  /** The mover of this kind, which may be unavailable. */
  public DataMover get(MoverKind kind) { return movers.get(kind); }

  /** The mover of this kind if available. */
  public Optional<DataMover> find(MoverKind kind) {
    DataMover m = movers.get(kind);
    return m.isAvailable() ? Optional.of(m) : Optional.empty();
  }

  /** The first available mover among the preferences (CPU if none). */
  public DataMover best(MoverKind... preference) {
    for (MoverKind k : preference) {
      if (movers.get(k).isAvailable()) {
        return movers.get(k);
      }
    }
    return movers.get(MoverKind.CPU);
  }

  /**
   * Calibrates an available mover again, at {@code sizes} (as at start-up: trimmed medians on
   * pre-faulted buffers, a plausibility check, {@link Calibration#fallback defaults} after
   * repeated rejections), without changing the calibration its waits use: for a policy whose
   * model was fitted against lines measured at other sizes. {@link Calibration#UNCALIBRATED} for
   * an unavailable mover, or one that failed while measuring (the reason is logged).
   */
  public Calibration measure(MoverKind kind, long[] sizes, int reps) {
    if (sizes.length < 2 || reps < 1) {
      throw new IllegalArgumentException("need at least two sizes and one repetition");
    }
    DataMover m = movers.get(kind);
    if (!m.isAvailable()) {
      return Calibration.UNCALIBRATED;
    }
    try {
      return Calibrator.calibrate(m, sizes.clone(), reps);
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, kind + " could not be measured", e);
      return Calibration.UNCALIBRATED;
    }
  }

  /** What the DSA discovery saw (devices, queues, verdicts). */
  public IdxdSysfs.Scan dsaScan() { return scan; }

  /** Which of the DSA path's checks ran on this host, and what each found. */
  public List<DsaCheck> dsaChecks() { return List.copyOf(dsaChecks); }

  /** A human-readable table of movers, reasons and calibrations. */
  public String report() {
    StringBuilder b = new StringBuilder();
    Calibration cpu = movers.get(MoverKind.CPU).calibration();
    b.append(String.format("%-9s %-9s %11s %13s %10s %16s%n", "mover", "available", "L_fixed(us)",
        "alpha(us/MiB)", "GB/s", "break-even(vsCPU)"));
    for (DataMover m : movers.values()) {
      Calibration c = m.calibration();
      if (!m.isAvailable()) {
        b.append(String.format("%-9s %-9s  %s%n", m.kind(), "no", m.unavailableReason()));
        continue;
      }
      if (c.isFallback()) {
        b.append(String.format("%-9s %-9s  %s%n", m.kind(), "yes", c));
        continue;
      }
      if (!c.measured()) {
        b.append(String.format("%-9s %-9s %11s %13s %10s %16s%n", m.kind(), "yes", "-", "-", "-",
            "-"));
        continue;
      }
      String be;
      if (m.kind() == MoverKind.CPU) {
        be = "(baseline)";
      } else {
        long x = cpu.measured() ? c.breakEvenBytes(cpu) : -1;
        be = !cpu.measured() ? "-" : x < 0 ? "never" : x == 0 ? "always" : human(x);
      }
      b.append(String.format("%-9s %-9s %11.1f %13.1f %10.2f %16s%n", m.kind(), "yes",
          c.fixedNanos() / 1000.0, c.microsPerMiB(), c.gigabytesPerSecond(), be));
    }
    return b.toString();
  }

  static String human(long bytes) {
    if (bytes >= 1 << 20) {
      return String.format("%.1f MiB", bytes / (double) (1 << 20));
    }
    if (bytes >= 1 << 10) {
      return String.format("%.1f KiB", bytes / 1024.0);
    }
    return bytes + " B";
  }

  /** Closes every mover (stops software-engine threads, closes DSA fds). */
  @Override
  public void close() {
    for (DataMover m : movers.values()) {
      m.close();
    }
  }
}
