package io.grpcshm.dsa.tools;

import io.grpcshm.dsa.Calibration;
import io.grpcshm.dsa.DataMover;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.internal.IdxdSysfs;
import io.grpcshm.dsa.internal.TimerSlack;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

/**
 * Prints which data movers this host has, why the others are missing, which of the DSA path's
 * checks ran here (and which did not), and each mover's calibration (L_fixed, α, break-even
 * size against the CPU copy).
 */
@Command(name = "HostReport", mixinStandardHelpOptions = true,
    description = "Data movers of this host, the DSA path's checks and each mover's calibration.")
public final class HostReport implements Runnable {
  @Option(names = "--no-calibrate", negatable = false,
      description = "skip the calibration copies (discovery and checks only)")
  private boolean noCalibrate;

  @Option(names = "--sysfs", paramLabel = "DIR", description = "sysfs root to scan for DSA devices")
  private Path sysfsRoot;

  @Option(names = "--dev", paramLabel = "DIR", description = "directory of the work-queue devices")
  private Path devDir;

  @Option(names = "--workers", paramLabel = "N", description = "software copy engine threads")
  private Integer workers;

  @Spec CommandSpec spec;

  private HostReport() {}

  /** Exits with 0, or 2 for bad arguments. */
  public static void main(String[] args) {
    int code = run(args);
    if (code != 0) {
      System.exit(code);
    }
  }

  /** Runs the report; the exit status (2: bad arguments), without exiting. */
  static int run(String... args) {
    return new CommandLine(new HostReport()).execute(args);
  }

  @Override
  public void run() {
    MoverRegistry.Options o = MoverRegistry.Options.defaults();
    if (noCalibrate) {
      o.calibrate(false);
    }
    if (sysfsRoot != null) {
      o.sysfsRoot(sysfsRoot);
    }
    if (devDir != null) {
      o.devDir(devDir);
    }
    if (workers != null) {
      if (workers < 1) {
        throw new ParameterException(spec.commandLine(), "--workers must be at least 1");
      }
      o.softwareWorkers(workers);
    }
    System.out.println("grpc-shm data movers on " + host());
    long before = TimerSlack.current();
    boolean set = TimerSlack.set(TimerSlack.DEFAULT_SLACK_NANOS);
    System.out.printf("timer slack: %d ns -> %s%n", before,
        set ? TimerSlack.current() + " ns (prctl PR_SET_TIMERSLACK via FFM)" : "unchanged");
    long t0 = System.nanoTime();
    try (MoverRegistry r = MoverRegistry.open(o)) {
      long ms = (System.nanoTime() - t0) / 1_000_000;
      System.out.println();
      for (DataMover m : r.movers()) {
        System.out.println(m.kind() + ": " + (m.isAvailable() ? m.description()
            : "unavailable - " + m.unavailableReason()));
      }
      System.out.println();
      IdxdSysfs.Scan s = r.dsaScan();
      System.out.println("DSA discovery: " + s.devices().size() + " device(s), "
          + s.queues().size() + " work queue(s)" + (s.reason().isEmpty() ? "" : " - " + s.reason()));
      s.devices().forEach(d -> System.out.printf("  %s state=%s gen_cap=0x%x cache_control=%s%n",
          d.name(), d.state(), d.genCap(), d.cacheControl()));
      s.queues().forEach(q -> System.out.println("  " + q));
      System.out.println();
      System.out.println("DSA path checks on this host:");
      r.dsaChecks().forEach(c -> System.out.println("  " + c));
      System.out.println();
      System.out.println("Calibration (sync copy, reused pre-faulted buffers, trimmed median; "
          + ms + " ms incl. discovery):");
      System.out.print(r.report());
      for (DataMover m : r.movers()) {
        Calibration c = m.calibration();
        if (c.measured()) {
          System.out.println("  " + m.kind() + " medians(ns) at " + Arrays.toString(c.sizes())
              + " B: " + Arrays.toString(c.medianNanos()));
        }
      }
      System.out.println("break-even = smallest size at which the mover's predicted sync latency"
          + " is <= the CPU copy's; async overlap can pay off earlier.");
    }
  }

  private static String host() {
    String cpu = "unknown CPU";
    try {
      cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
          .filter(l -> l.startsWith("model name")).findFirst()
          .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(cpu);
    } catch (IOException ignored) {
      // not Linux: leave it unknown
    }
    String kernel = System.getProperty("os.name") + " " + System.getProperty("os.version");
    return cpu + ", " + Runtime.getRuntime().availableProcessors() + " CPUs, " + kernel
        + ", Java " + Runtime.version();
  }
}
