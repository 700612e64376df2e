package io.grpcshm.policy.bench;

import io.grpcshm.dsa.Mode;
import io.grpcshm.policy.Decision;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.Signals;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Cost of one decision with the shipped model, including the signal reads. {@code hit}: same
 * bucket every call. {@code miss}: cache disabled, so every call evaluates the model for the
 * call mode's candidates. {@code missThroughCache}: a new bucket every call (active streams
 * cycle over 256 values × 16 sizes) in a 256-entry cache, so the lookup, the computation and the
 * insert are paid on every call. {@code load=busy} keeps every core busy with spinning threads
 * (one per available processor) for the whole trial, so the decisions compete for the cores.
 */
@State(Scope.Benchmark)
@BenchmarkMode({org.openjdk.jmh.annotations.Mode.SampleTime,
    org.openjdk.jmh.annotations.Mode.AverageTime})
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class DecisionBenchmark {
  @Param({"quiet", "busy"})
  public String load;

  private final java.util.List<Thread> spinners = new java.util.ArrayList<>();
  private volatile boolean stopSpinning;
  public static volatile long spun;

  Signals signals;
  PolicyEngine cached;
  PolicyEngine uncached;
  PolicyEngine smallCache;
  int streams;
  int i;

  @Setup(Level.Trial)
  public void setup() {
    signals = Signals.start(() -> streams, Duration.ofMillis(20));
    signals.awaitSamples(2, Duration.ofSeconds(1));
    cached = PolicyEngine.builder().signals(signals).deploymentMode(Mode.ASYNC).build();
    uncached = PolicyEngine.builder().signals(signals).deploymentMode(Mode.ASYNC).cacheSize(0)
        .build();
    smallCache = PolicyEngine.builder().signals(signals).deploymentMode(Mode.ASYNC)
        .cacheSize(256).build();
    if (!cached.hasModel()) {
      throw new IllegalStateException(cached.status());
    }
    if (load.equals("busy")) {
      stopSpinning = false;
      for (int t = 0; t < Runtime.getRuntime().availableProcessors(); t++) {
        Thread th = Thread.ofPlatform().daemon().name("bench-load-" + t).start(() -> {
          long x = 0;
          while (!stopSpinning) {
            for (int k = 0; k < 10_000; k++) {
              x = x * 6364136223846793005L + 1442695040888963407L;
            }
          }
          spun += x;
        });
        spinners.add(th);
      }
    }
  }

  @TearDown(Level.Trial)
  public void tearDown() throws InterruptedException {
    stopSpinning = true;
    for (Thread t : spinners) {
      t.join();
    }
    spinners.clear();
    signals.close();
  }

  @Benchmark
  public Decision hit() {
    return cached.decide(256 << 10, 0);
  }

  @Benchmark
  public Decision miss() {
    int k = i++;
    return uncached.decide(4096L << (k & 15), 0);
  }

  @Benchmark
  public Decision missThroughCache() {
    int k = i++;
    streams = (k >>> 4) & 255;
    return smallCache.decide(4096L << (k & 15), 0);
  }
}
