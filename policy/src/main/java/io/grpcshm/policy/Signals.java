package io.grpcshm.policy;

import io.grpcshm.policy.internal.LlcProbe;
import io.grpcshm.policy.internal.PerfLlc;
import io.grpcshm.policy.internal.ProcStat;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.locks.LockSupport;

/**
 * Samples the process-level signals off the request path: a daemon thread wakes every
 * {@code interval}, turns {@code /proc/self/stat} fault-counter deltas into a page-fault rate
 * and measures LLC pressure, and publishes both in volatile fields. The request path only reads
 * those fields and asks the transport's {@link SignalSource} for active streams (nanoseconds).
 *
 * <p>The thread starts on the first read of a sampled signal ({@link #pageFaultRate},
 * {@link #llcPressure}, {@link #features}, {@link #awaitSamples}), not before: a policy whose
 * model does not split on either signal never reads them, so nothing is sampled for it.
 *
 * <p>LLC pressure comes from hardware counters (LLC misses per 1000 loads of a pointer chase,
 * through {@code perf_event_open}) where the kernel allows, otherwise from a measured proxy:
 * ns per load of the same chase. The two have different units: {@link #llcSource()} says which
 * one is in use and the model records which one it was trained on.
 */
public final class Signals implements AutoCloseable {
  /** Where the LLC-pressure number comes from. */
  public enum LlcSource {
    /** perf_event_open hardware counter: LLC misses per 1000 probe loads. */
    PERF,
    /** Measured proxy: ns per dependent load of a pointer chase over 8 MiB. */
    PROXY,
    /** Set by the caller (tests, replays of recorded traces). */
    FIXED
  }

  private static final int PROBE_BYTES = 8 << 20;
  private static final int PROBE_LOADS = 2048;
  private static final double EWMA = 0.5;

  private final SignalSource streams;
  private final Thread sampler;
  private final java.util.concurrent.atomic.AtomicBoolean started =
      new java.util.concurrent.atomic.AtomicBoolean();
  private volatile double pfRate;
  private volatile double llc;
  private volatile long samples;
  private volatile boolean stop;
  private volatile LlcSource llcSource;
  private volatile String llcDetail;
  private final String pfSource;

  private Signals(SignalSource streams, Duration interval, boolean sample) {
    this.streams = Objects.requireNonNull(streams, "streams");
    if (!sample) {
      sampler = null;
      llcSource = LlcSource.FIXED;
      llcDetail = "fixed by caller";
      pfSource = "fixed by caller";
      return;
    }
    pfSource = ProcStat.faults(ProcStat.SELF) < 0 ? "unavailable (/proc/self/stat unreadable)"
        : "/proc/self/stat minflt+majflt delta per ms";
    llcSource = LlcSource.PROXY;
    llcDetail = "pending first sample";
    long periodNanos = Math.max(1_000_000L, interval.toNanos());
    sampler = Thread.ofPlatform().daemon().name("policy-signals").unstarted(
        () -> run(periodNanos));
  }

  /** Starts the sampler on first use (a volatile read once started). */
  private void ensureSampling() {
    if (sampler != null && !started.get() && !stop && started.compareAndSet(false, true)) {
      sampler.start();
    }
  }

  /** Whether the sampling thread has been started (a sampled signal was read). */
  public boolean sampling() {
    return started.get();
  }

  /** Samples every 20 ms once a sampled signal is first read. */
  public static Signals start(SignalSource streams) {
    return start(streams, Duration.ofMillis(20));
  }

  public static Signals start(SignalSource streams, Duration interval) {
    return new Signals(streams, interval, true);
  }

  /** No sampling thread: values are whatever {@link #set} says (tests, replays). */
  public static Signals fixed(double pageFaultRate, double llcPressure, SignalSource streams) {
    Signals s = new Signals(streams, Duration.ZERO, false);
    s.set(pageFaultRate, llcPressure);
    return s;
  }

  /** Overrides the sampled values (only meaningful for {@link #fixed}). */
  public void set(double pageFaultRate, double llcPressure) {
    this.pfRate = pageFaultRate;
    this.llc = llcPressure;
  }

  private void run(long periodNanos) {
    LlcProbe probe = new LlcProbe(PROBE_BYTES, PROBE_LOADS, 42);
    PerfLlc perf = PerfLlc.open(); // per-thread counter: opened on the thread that probes
    if (perf != null) {
      llcSource = LlcSource.PERF;
      llcDetail = "perf_event_open HW_CACHE_MISSES per 1000 probe loads";
    } else {
      llcSource = LlcSource.PROXY;
      llcDetail = "proxy: ns per load, 8 MiB pointer chase (" + PerfLlc.lastError() + ")";
    }
    try {
      long lastFaults = ProcStat.faults(ProcStat.SELF);
      long lastT = System.nanoTime();
      boolean first = true;
      while (!stop) {
        LockSupport.parkNanos(periodNanos);
        long f = ProcStat.faults(ProcStat.SELF);
        long t = System.nanoTime();
        double rate = f < 0 || lastFaults < 0 ? 0 : (f - lastFaults) / ((t - lastT) / 1e6);
        lastFaults = f;
        lastT = t;
        double l;
        if (perf != null) {
          long m0 = perf.read();
          probe.sample();
          long m1 = perf.read();
          l = (m1 - m0) * 1000.0 / PROBE_LOADS;
        } else {
          l = probe.sample();
        }
        if (first) {
          pfRate = rate;
          llc = l;
          first = false;
        } else {
          pfRate = EWMA * rate + (1 - EWMA) * pfRate;
          llc = EWMA * l + (1 - EWMA) * llc;
        }
        samples++;
      }
    } finally {
      if (perf != null) {
        perf.close();
      }
    }
  }

  /** Page faults per ms in this process (smoothed); 0 until the first sample. */
  public double pageFaultRate() {
    ensureSampling();
    return pfRate;
  }

  /** LLC pressure in the unit of {@link #llcSource()} (smoothed); 0 until the first sample. */
  public double llcPressure() {
    ensureSampling();
    return llc;
  }

  /** From the transport's {@link SignalSource}. */
  public int activeStreams() { return streams.activeStreams(); }

  public LlcSource llcSource() { return llcSource; }

  /** Every signal and where it comes from, one line each. */
  public String describe() {
    return "payload_bytes: caller\n"
        + "reuse_window: caller hint (-1 = unknown)\n"
        + "pf_rate: " + pfSource + "\n"
        + "llc_pressure: " + llcSource + " — " + llcDetail + "\n"
        + "active_streams: transport SignalSource";
  }

  /** Samples taken so far. */
  public long samples() { return samples; }

  /** Blocks until {@code n} more samples have been taken (or the timeout). */
  public boolean awaitSamples(int n, Duration timeout) {
    if (sampler == null) {
      return true;
    }
    ensureSampling();
    long target = samples + n;
    long deadline = System.nanoTime() + timeout.toNanos();
    while (samples < target) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      LockSupport.parkNanos(1_000_000);
    }
    return true;
  }

  /** The feature vector for a call right now. */
  public CallFeatures features(long payloadBytes, int reuseWindow) {
    ensureSampling();
    return new CallFeatures(payloadBytes, reuseWindow, pfRate, llc, streams.activeStreams());
  }

  /** Stops and joins the sampling thread. */
  @Override
  public void close() {
    stop = true;
    if (sampler != null && started.get()) {
      LockSupport.unpark(sampler);
      boolean interrupted = false;
      while (sampler.isAlive()) {
        try {
          sampler.join();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
