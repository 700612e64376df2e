package io.grpcshm.policy.tools;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import io.grpcshm.policy.Candidate;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.SignalSource;
import io.grpcshm.policy.Signals;
import io.grpcshm.policy.internal.BandwidthHog;
import io.grpcshm.policy.internal.TraceCsv;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code profile}: sweeps every candidate this host has (mover × cache injection where a mover
 * honours it × mode) over payload sizes and induced conditions (bandwidth hogs, fresh vs reused
 * buffers, concurrent clients, reuse hint) and appends traces to a CSV. Bounded by
 * {@code --max-minutes}; rerunning the same command resumes (finished workloads are skipped).
 */
@Command(name = "profile", mixinStandardHelpOptions = true,
    description = "Profile data-mover candidates on this host into a trace CSV.")
public final class Profile implements Callable<Integer> {
  @Option(names = "--out", required = true, description = "trace CSV (appended to; resumable)")
  Path out;

  @Option(names = "--run-id", description = "label written into every row (default run-<seed>)")
  String runId;

  @Option(names = "--seed", defaultValue = "1", description = "workload order and random sizes")
  long seed;

  @Option(names = "--sizes", split = ",", defaultValue = "4K,16K,64K,256K,1M,2M,4M,6M,8M,16M,32M",
      description = "payload sizes (K/M suffixes)")
  List<String> sizes;

  @Option(names = "--random-sizes", defaultValue = "0",
      description = "extra log-uniform sizes in [--min-size, --max-size]")
  int randomSizes;

  @Option(names = "--min-size", defaultValue = "2K") String minSize;
  @Option(names = "--max-size", defaultValue = "32M") String maxSize;

  @Option(names = "--hogs", split = ",", defaultValue = "0,1",
      description = "bandwidth-hog thread counts (LLC pressure)")
  List<Integer> hogs;

  @Option(names = "--clients", split = ",", defaultValue = "1,2",
      description = "concurrent clients (1 = only the measured one)")
  List<Integer> clients;

  @Option(names = "--fresh", split = ",", defaultValue = "0",
      description = "0 = reused buffers, 1 = a new ring per burst (cache-cold; its pages are"
          + " zeroed, so faulted, before the timed copy)")
  List<Integer> fresh;

  @Option(names = "--reuse", split = ",", defaultValue = "-1,0",
      description = "reuse-window hints: -1 unknown (no read-back), 0 immediate read-back")
  List<Integer> reuse;

  @Option(names = "--modes", split = ",", defaultValue = "SYNC,ASYNC,PIPELINED")
  List<String> modes;

  @Option(names = "--burst", defaultValue = "8", description = "messages per measurement")
  int burst;

  @Option(names = "--reps", defaultValue = "5", description = "measurements per candidate (median)")
  int reps;

  @Option(names = "--max-minutes", defaultValue = "5", description = "time bound for this run")
  double maxMinutes;

  @Option(names = "--limit", defaultValue = "0", description = "at most this many workloads (0 = all)")
  int limit;

  @Option(names = "--no-calibrate", description = "skip mover calibration at start-up (the"
      + " traces then have no calibrated line, which training on residuals needs)")
  boolean noCalibrate;

  /**
   * Calibration sizes of the profiling run (8-32 MiB, so α describes copies that leave the
   * caches: on the reference VM 1-8 MiB copy at about 27 µs/MiB, 32 MiB at 53 µs/MiB, and no
   * line fits both); the residual model learns the rest. The deployed engine measures the host's
   * lines at the same sizes. The runtime's default calibration stops at 4 MiB, which is what its
   * waits need.
   */
  static final long[] CALIBRATION_SIZES = PolicyEngine.calibrationSizes();

  record Workload(long size, int reuse, int hogs, int clients, boolean fresh) {
    String id() {
      return "s" + size + "-r" + reuse + "-h" + hogs + "-c" + clients + "-f" + (fresh ? 1 : 0);
    }
  }

  public static void main(String[] args) {
    System.exit(Cli.run(new Profile(), args));
  }

  static long parseSize(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT);
    long mul = 1;
    if (t.endsWith("K")) {
      mul = 1 << 10;
    } else if (t.endsWith("M")) {
      mul = 1 << 20;
    } else if (t.endsWith("G")) {
      mul = 1L << 30;
    }
    if (mul > 1) {
      t = t.substring(0, t.length() - 1);
    }
    return (long) (Double.parseDouble(t) * mul);
  }

  List<Workload> workloads() {
    TreeSet<Long> all = new TreeSet<>();
    sizes.stream().filter(s -> !s.isBlank()).forEach(s -> all.add(parseSize(s)));
    Random rnd = new Random(seed);
    double lo = Math.log(parseSize(minSize));
    double hi = Math.log(parseSize(maxSize));
    for (int i = 0; i < randomSizes; i++) {
      all.add(Math.round(Math.exp(lo + rnd.nextDouble() * (hi - lo))) & ~63L);
    }
    List<Workload> w = new ArrayList<>();
    for (long s : all) {
      for (int r : reuse) {
        for (int h : hogs) {
          for (int c : clients) {
            for (int f : fresh) {
              w.add(new Workload(s, r, h, c, f != 0));
            }
          }
        }
      }
    }
    // Shuffled so that a bounded (partial) run still covers the whole space.
    Collections.shuffle(w, new Random(seed));
    return limit > 0 && limit < w.size() ? w.subList(0, limit) : w;
  }

  static List<Candidate> candidates(MoverRegistry movers, List<Mode> modes) {
    List<Candidate> c = new ArrayList<>();
    for (MoverKind k : MoverKind.values()) {
      if (movers.find(k).isEmpty()) {
        continue;
      }
      // Only DSA can honour cache injection; the CPU and software engine accept the flag with
      // no effect, so they get one candidate each (not a fake inject/bypass pair).
      boolean[] injects = k == MoverKind.DSA ? new boolean[] {false, true} : new boolean[] {false};
      for (boolean inj : injects) {
        for (Mode m : modes) {
          c.add(new Candidate(k, inj, m));
        }
      }
    }
    return c;
  }

  @Override
  public Integer call() throws IOException {
    PrintStream err = System.err;
    String run = runId != null ? runId : "run-" + seed;
    List<Mode> modeList = modes.stream().map(Mode::parse).toList();
    List<Workload> all = workloads();
    Map<String, Integer> done = Map.of();
    boolean exists = Files.exists(out) && Files.size(out) > 0;
    if (exists) {
      String head = Files.readAllLines(out, StandardCharsets.UTF_8).get(0).trim();
      if (!head.equals(TraceCsv.header())) {
        throw new IllegalArgumentException(out + " has other columns than this profiler writes"
            + " (an older trace format?): resume only files this version wrote; use another --out");
      }
      done = TraceCsv.rowsPerWorkload(TraceCsv.read(out));
    }
    Path parent = out.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    long deadline = System.nanoTime() + (long) (maxMinutes * 60e9);
    WaitStrategy wait = WaitStrategy.hybrid();
    try (MoverRegistry movers = MoverRegistry.open(MoverRegistry.Options.defaults()
            .calibrate(!noCalibrate).calibrationSizes(CALIBRATION_SIZES)
            .calibrationReps(PolicyEngine.CALIBRATION_REPS));
        Signals signals = Signals.start(SignalSource.fixed(1));
        BufferedWriter w = Files.newBufferedWriter(out, StandardCharsets.UTF_8,
            StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
      if (!exists) {
        w.write(TraceCsv.header());
        w.newLine();
      }
      List<Candidate> cands = candidates(movers, modeList);
      signals.awaitSamples(3, Duration.ofSeconds(2));
      err.println("profile: " + all.size() + " workloads x " + cands.size() + " candidates "
          + cands.stream().map(Candidate::label).toList());
      err.println(movers.report().strip());
      err.println("signals:\n  " + signals.describe().replace("\n", "\n  "));
      if (movers.find(MoverKind.DSA).isEmpty()) {
        err.println("DSA: absent (" + movers.get(MoverKind.DSA).unavailableReason()
            + ") - no DSA candidates");
      }
      int skipped = 0;
      int measured = 0;
      long start = System.nanoTime();
      Random order = new Random(seed ^ 0x5EED);
      for (int wi = 0; wi < all.size(); wi++) {
        Workload wl = all.get(wi);
        if (done.getOrDefault(wl.id(), 0) >= cands.size()) {
          skipped++;
          continue;
        }
        if (System.nanoTime() > deadline) {
          err.printf(Locale.ROOT, "profile: time bound (%.1f min) reached after %d workloads; "
              + "%d left - rerun the same command to resume%n", maxMinutes, measured,
              all.size() - wi);
          return 0;
        }
        List<TraceCsv.Row> rows = measure(movers, signals, cands, wl, run, wait, order);
        for (TraceCsv.Row r : rows) {
          w.write(r.toCsv());
          w.newLine();
        }
        w.flush();
        measured++;
        TraceCsv.Row best = rows.stream()
            .min((a, b) -> Double.compare(a.latencyUs(), b.latencyUs())).orElseThrow();
        double el = (System.nanoTime() - start) / 1e9;
        double eta = el / measured * (all.size() - wi - 1);
        err.printf(Locale.ROOT, "[%4d/%4d] %-9s reuse=%2d hogs=%d clients=%d fresh=%d | pf=%7.1f/ms "
                + "llc=%6.1f | best %-18s %9.1f us | %s elapsed, eta %s%n",
            wi + 1, all.size(), human(wl.size()), wl.reuse(), wl.hogs(), wl.clients(),
            wl.fresh() ? 1 : 0, best.pfRate(), best.llcPressure(),
            new Candidate(best.mover(), best.cacheInjection(), best.mode()).label(),
            best.latencyUs(), clock(el), clock(eta));
      }
      err.printf("profile: done, %d workloads measured, %d already in %s%n", measured, skipped,
          out);
    }
    return 0;
  }

  @SuppressWarnings("try") // the hog only has to run while the block does
  List<TraceCsv.Row> measure(MoverRegistry movers, Signals signals, List<Candidate> cands,
      Workload wl, String run, WaitStrategy wait, Random order) {
    int n = cands.size();
    double[][] lat = new double[n][reps];
    double pf = 0;
    double llc = 0;
    int samples = 0;
    double load1 = loadAverage();
    try (BandwidthHog hog = wl.hogs() > 0 ? new BandwidthHog(wl.hogs(), 64L << 20) : null;
        Workbench.Ring ring = new Workbench.Ring(burst, wl.size(), true);
        Workbench.Clients others = new Workbench.Clients(wl.clients() - 1, movers, wl.size(),
            cands.get(0), wait)) {
      boolean readBack = wl.reuse() == 0;
      // Warm-up: one burst per candidate, so the signals describe this workload, not the last.
      for (Candidate c : cands) {
        others.current = c;
        Workbench.burst(movers, c, ring, wl.size(), burst, wl.fresh(), readBack, wait);
      }
      signals.awaitSamples(2, Duration.ofMillis(500));
      List<Integer> idx = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        idx.add(i);
      }
      for (int r = 0; r < reps; r++) {
        Collections.shuffle(idx, order); // interleaved, random order: drift hits all alike
        for (int i : idx) {
          Candidate c = cands.get(i);
          others.current = c;
          pf += signals.pageFaultRate();
          llc += signals.llcPressure();
          samples++;
          lat[i][r] = Workbench.burst(movers, c, ring, wl.size(), burst, wl.fresh(), readBack,
              wait);
        }
      }
    }
    pf /= samples;
    llc /= samples;
    String pfSrc = "procstat";
    String llcSrc = signals.llcSource().name().toLowerCase(Locale.ROOT);
    List<TraceCsv.Row> rows = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Candidate c = cands.get(i);
      double[] l = lat[i].clone();
      Arrays.sort(l);
      double median = l[l.length / 2];
      double spread = median > 0 ? (l[l.length - 1] - l[0]) / median : 0;
      io.grpcshm.dsa.Calibration cal = movers.get(c.mover()).calibration();
      boolean line = cal.nanosPerByte() > 0;
      rows.add(new TraceCsv.Row(run, wl.id(), wl.size(), wl.reuse(), pf, llc, wl.clients(),
          c.mover(), c.cacheInjection(), c.mode(), median, wl.hogs(), wl.clients(),
          wl.fresh(), pfSrc, llcSrc, reps, spread, load1,
          line ? cal.fixedNanos() / 1000.0 : Double.NaN, line ? cal.microsPerMiB() : Double.NaN));
    }
    return rows;
  }

  /** The host's 1-minute load average (/proc/loadavg), or -1 where there is none. */
  static double loadAverage() {
    try {
      String s = Files.readString(Path.of("/proc/loadavg")).trim();
      return Double.parseDouble(s.substring(0, s.indexOf(' ')));
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  static String human(long b) {
    if (b >= 1 << 20) {
      return String.format(Locale.ROOT, "%.1fMiB", b / (double) (1 << 20));
    }
    return String.format(Locale.ROOT, "%.1fKiB", b / 1024.0);
  }

  static String clock(double s) {
    long t = Math.round(s);
    return String.format(Locale.ROOT, "%d:%02d", t / 60, t % 60);
  }

}
