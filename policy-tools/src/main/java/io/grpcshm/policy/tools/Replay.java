package io.grpcshm.policy.tools;

import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import io.grpcshm.policy.CallFeatures;
import io.grpcshm.policy.Candidate;
import io.grpcshm.policy.Decision;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.SignalSource;
import io.grpcshm.policy.Signals;
import io.grpcshm.policy.internal.BandwidthHog;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code replay}: the thesis's Figure 5.4 workload on this host — 100 requests: small payloads
 * with low pressure (0–35), large streaming payloads under pressure (36–70, bandwidth hogs
 * running), medium payloads with low pressure (71–99). Signals are sampled live, every request
 * is really copied with the chosen mover, and the decisions are printed as a timeline.
 */
@Command(name = "replay", mixinStandardHelpOptions = true,
    description = "Replay a changing workload and print the policy's decisions.")
public final class Replay implements Callable<Integer> {
  @Option(names = "--model", description = "model file (default: the shipped default model)")
  Path model;

  @Option(names = "--mode", defaultValue = "ASYNC", description = "deployment mode")
  String mode;

  @Option(names = "--hogs", defaultValue = "1", description = "hog threads in phase 2")
  int hogs;

  @Option(names = "--burst", defaultValue = "4", description = "messages per request")
  int burst;

  @Option(names = "--seed", defaultValue = "5") long seed;

  public static void main(String[] args) {
    System.exit(Cli.run(new Replay(), args));
  }

  /** Phase of request i (thesis: 0–35 small, 36–70 large + pressure, 71–99 medium). */
  static int phase(int i) {
    return i <= 35 ? 1 : i <= 70 ? 2 : 3;
  }

  static long size(int phase, Random r) {
    return switch (phase) {
      case 1 -> (64L << 10) + r.nextLong(960L << 10);      // 64 KiB – 1 MiB  (< 5 MB)
      case 2 -> (12L << 20) + r.nextLong(12L << 20);       // 12 – 24 MiB     (> 10 MB)
      default -> (5L << 20) + r.nextLong(5L << 20);        // 5 – 10 MiB
    } & ~63L;
  }

  @Override
  public Integer call() {
    Mode m = Mode.parse(mode);
    Random rnd = new Random(seed);
    WaitStrategy wait = WaitStrategy.hybrid();
    try (MoverRegistry movers = MoverRegistry.open();
        Signals signals = Signals.start(SignalSource.fixed(1), Duration.ofMillis(10))) {
      PolicyEngine.Builder b = PolicyEngine.builder().hostMovers(movers).deploymentMode(m)
          .signals(signals);
      if (model != null) {
        b.model(model);
      }
      PolicyEngine engine = b.build();
      System.out.println("replay: " + engine.status());
      System.out.println("signals:\n  " + signals.describe().replace("\n", "\n  "));
      signals.awaitSamples(3, Duration.ofSeconds(1));
      System.out.printf(Locale.ROOT, "%4s %5s %10s %9s %8s %-10s %-9s %12s %12s%n", "req",
          "phase", "size", "pf/ms", "llc", "decision", "modehint", "pred_us", "measured_us");
      StringBuilder strip = new StringBuilder();
      BandwidthHog hog = null;
      String last = null;
      try {
        for (int i = 0; i < 100; i++) {
          int ph = phase(i);
          if (ph == 2 && hog == null && hogs > 0) {
            hog = new BandwidthHog(hogs, 64L << 20);
            signals.awaitSamples(3, Duration.ofSeconds(1));
          }
          if (ph == 3 && hog != null) {
            hog.close();
            hog = null;
            signals.awaitSamples(3, Duration.ofSeconds(1));
          }
          long size = size(ph, rnd);
          // Streaming phase: the consumer does not touch the data again soon (unknown reuse);
          // the other phases read it right away.
          int reuse = ph == 2 ? CallFeatures.REUSE_UNKNOWN : CallFeatures.REUSE_IMMEDIATE;
          CallFeatures f = signals.features(size, reuse);
          Decision d = engine.decide(f);
          double us;
          try (Workbench.Ring ring = new Workbench.Ring(burst, size, true)) {
            us = Workbench.burst(movers, new Candidate(d.mover(), d.cacheInjection(), m), ring,
                size, burst, false, reuse == 0, wait);
          }
          engine.observe(d, f, us);
          String label = d.label();
          System.out.printf(Locale.ROOT, "%4d %5d %10s %9.1f %8.1f %-10s %-9s %12.1f %12.1f%s%n",
              i, ph, Profile.human(size), f.pageFaultRate(), f.llcPressure(), label,
              d.modeHint().name().toLowerCase(Locale.ROOT), d.predictedMicros(), us,
              last != null && !last.equals(label) ? "   <- switch" : "");
          strip.append(Character.toUpperCase(label.charAt(0)));
          last = label;
        }
      } finally {
        if (hog != null) {
          hog.close();
        }
      }
      System.out.println("timeline (C = cpu, S = software, D = dsa), phases 1|2|3:");
      System.out.println(strip.substring(0, 36) + "|" + strip.substring(36, 71) + "|"
          + strip.substring(71));
    }
    return 0;
  }
}
