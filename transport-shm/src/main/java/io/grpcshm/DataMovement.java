package io.grpcshm;

import io.grpc.Internal;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import io.grpcshm.internal.movement.MovesInFlight;
import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.Signals;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * How a shared-memory connection moves large off-heap payloads into shared memory: which data
 * mover (a copy on the sending thread, a copy split over several threads, the software copy
 * engine, Intel DSA) in which mode (sync, async, pipelined), the mover chosen per payload by the
 * learned policy among the candidates of the move's mode, observable through a
 * {@link MoveTracer} and per-mover {@link #counters}.
 *
 * <p>Movers work on native addresses, so only off-heap sources can be handed to them: a
 * marshaller offers them through {@link BulkWriter} (the zero-copy protobuf marshaller does so
 * for large {@code bytes} fields backed by direct buffers or by shared memory). Heap payloads
 * (grpc's ordinary {@code InputStream} path) are always copied on the CPU.
 *
 * <p>The effective mode of a move is, first match wins: {@link #scopedMode} on the sending
 * thread, {@link ShmCallOptions#MOVER_MODE} of the call, {@link #withMode} of this
 * configuration, else SYNC (the marshaller waits for the move before it returns, so nothing
 * overlaps it). The policy decides among that mode's candidates, so a mover that wins in that
 * mode on this host is the one used. Instances are immutable and thread-safe; share one between
 * channels and servers to share its counters.
 */
public final class DataMovement {
  private static final Logger LOG = Logger.getLogger(DataMovement.class.getName());

  /** Below this, a copy is cheaper than asking the policy. */
  public static final int DEFAULT_THRESHOLD = 64 * 1024;

  private final Supplier<MoverRegistry> movers;
  private final Supplier<PolicyEngine> policy; // null: movers only by fixedMover / CPU
  private final MoverKind fixedMover;
  private final Mode mode;
  private final int threshold;
  private final MoveTracer tracer;
  private final WaitStrategy wait;
  private final Counters counters;
  /** False while the movers and policy are still being opened (CPU copies meanwhile). */
  private final BooleanSupplier ready;

  private DataMovement(Supplier<MoverRegistry> movers, Supplier<PolicyEngine> policy,
      MoverKind fixedMover, Mode mode, int threshold, MoveTracer tracer, WaitStrategy wait,
      Counters counters, BooleanSupplier ready) {
    this.movers = movers;
    this.policy = policy;
    this.fixedMover = fixedMover;
    this.mode = mode;
    this.threshold = threshold;
    this.tracer = tracer;
    this.wait = wait;
    this.counters = counters;
    this.ready = ready;
  }

  /**
   * The default: the shipped policy model over this host's movers (opened and calibrated once
   * per process, on the first large off-heap payload), deciding in each move's effective mode.
   * Every call returns the same instance.
   */
  public static DataMovement defaults() {
    return Defaults.INSTANCE;
  }

  /** CPU copies only, no policy: the behaviour of a transport without data movers. */
  public static DataMovement cpuOnly() {
    return new DataMovement(Defaults::cpuRegistry, null, MoverKind.CPU, Mode.SYNC,
        DEFAULT_THRESHOLD, null, WaitStrategy.spin(), new Counters(), () -> true);
  }

  /** This policy and these movers (the policy should have been built for these movers). */
  public static DataMovement of(PolicyEngine policy, MoverRegistry movers) {
    Objects.requireNonNull(policy, "policy");
    Objects.requireNonNull(movers, "movers");
    return new DataMovement(() -> movers, () -> policy, null, null, DEFAULT_THRESHOLD, null,
        WaitStrategy.hybrid(), new Counters(), () -> true);
  }

  /** Always this mover (if available; CPU otherwise), no policy: for benchmarks and tests. */
  public DataMovement withFixedMover(MoverKind mover, MoverRegistry registry) {
    Objects.requireNonNull(mover, "mover");
    Objects.requireNonNull(registry, "registry");
    return new DataMovement(() -> registry, null, mover, mode, threshold, tracer, wait,
        new Counters(), () -> true);
  }

  /** Every move of channels/servers using this configuration runs in {@code mode}. */
  public DataMovement withMode(Mode mode) {
    return new DataMovement(movers, policy, fixedMover, Objects.requireNonNull(mode, "mode"),
        threshold, tracer, wait, counters, ready);
  }

  /** Payloads smaller than this are copied on the CPU without a decision. */
  public DataMovement withThreshold(int bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("threshold < 0: " + bytes);
    }
    return new DataMovement(movers, policy, fixedMover, mode, bytes, tracer, wait, counters,
        ready);
  }

  /** Called once per move, on the sending thread, after the move completed. */
  public DataMovement withTracer(MoveTracer tracer) {
    return new DataMovement(movers, policy, fixedMover, mode, threshold,
        Objects.requireNonNull(tracer, "tracer"), wait, counters, ready);
  }

  /** How the sending thread waits for a mover's completion (default: hybrid sleep-then-poll). */
  public DataMovement withWaitStrategy(WaitStrategy wait) {
    return new DataMovement(movers, policy, fixedMover, mode, threshold, tracer,
        Objects.requireNonNull(wait, "wait"), counters, ready);
  }

  /**
   * Runs the sends of the current thread in {@code mode} until the returned scope is closed,
   * overriding call options and configuration (e.g. to switch modes between messages of one
   * stream). Scopes nest.
   */
  public static ModeScope scopedMode(Mode mode) {
    return io.grpcshm.internal.movement.BulkSession.pushMode(Objects.requireNonNull(mode));
  }

  /** Closes a {@link #scopedMode} override. */
  public interface ModeScope extends AutoCloseable {
    @Override
    void close();
  }

  /** Aggregate counters of one mover under this configuration. */
  public record MoverCounters(long moves, long bytes, long totalMicros, long cpuFallbacks) {}

  /** Snapshot of the counters of {@code mover}. */
  public MoverCounters counters(MoverKind mover) {
    return counters.snapshot(mover);
  }

  /** Snapshot of every mover's counters. */
  public Map<MoverKind, MoverCounters> counters() {
    Map<MoverKind, MoverCounters> m = new EnumMap<>(MoverKind.class);
    for (MoverKind k : MoverKind.values()) {
      m.put(k, counters.snapshot(k));
    }
    return m;
  }

  // Accessors for the transport's io.grpcshm.internal.movement; not for applications.

  @Internal
  public int threshold() { return threshold; }

  @Internal
  public Mode configuredMode() { return mode; }

  @Internal
  public MoverKind fixedMover() { return fixedMover; }

  /** Null when this configuration has no policy. */
  @Internal
  public PolicyEngine policy() { return policy == null ? null : policy.get(); }

  @Internal
  public MoverRegistry movers() { return movers.get(); }

  @Internal
  public MoveTracer tracer() { return tracer; }

  @Internal
  public WaitStrategy waitStrategy() { return wait; }

  /** False while the default movers are being opened in the background (or failed to open). */
  @Internal
  public boolean ready() { return ready.getAsBoolean(); }

  /** Why {@link #ready()} is false. */
  @Internal
  public String notReadyReason() {
    String f = Defaults.failure;
    return f != null ? f : "movers are still being opened";
  }

  /** Records one completed move. */
  @Internal
  public void count(MoverKind mover, long bytes, long nanos, boolean cpuFallback) {
    counters.add(mover, bytes, nanos, cpuFallback);
  }

  private static final class Counters {
    private final LongAdder[] moves = adders();
    private final LongAdder[] bytes = adders();
    private final LongAdder[] nanos = adders();
    private final LongAdder[] fallbacks = adders();

    private static LongAdder[] adders() {
      LongAdder[] a = new LongAdder[MoverKind.values().length];
      for (int i = 0; i < a.length; i++) {
        a[i] = new LongAdder();
      }
      return a;
    }

    void add(MoverKind k, long n, long ns, boolean fallback) {
      int i = k.ordinal();
      moves[i].increment();
      bytes[i].add(n);
      nanos[i].add(ns);
      if (fallback) {
        fallbacks[i].increment();
      }
    }

    MoverCounters snapshot(MoverKind k) {
      int i = k.ordinal();
      return new MoverCounters(moves[i].sum(), bytes[i].sum(), nanos[i].sum() / 1000,
          fallbacks[i].sum());
    }
  }

  /** The process-wide movers and policy, opened on first use (calibration takes ~0.5 s). */
  private static final class Defaults {
    static final DataMovement INSTANCE = new DataMovement(Defaults::registry, Defaults::policy,
        null, null, DEFAULT_THRESHOLD, null, WaitStrategy.hybrid(), new Counters(),
        Defaults::ready);

    /**
     * Opening the movers calibrates them (about a second): done on a background thread the
     * first time a payload could use them, so no call waits for it; CPU copies meanwhile.
     */
    private static final java.util.concurrent.atomic.AtomicBoolean started =
        new java.util.concurrent.atomic.AtomicBoolean();
    private static volatile boolean opened;
    private static volatile String failure;

    static boolean ready() {
      if (opened) {
        return true;
      }
      if (started.compareAndSet(false, true)) {
        Thread.ofPlatform().daemon().name("grpc-shm-movers-init").start(() -> {
          try {
            policy();
          } catch (RuntimeException | Error e) {
            LOG.log(Level.WARNING, "data movers could not be opened; CPU copies only", e);
            failure = "data movers could not be opened: " + e;
            return;
          }
          opened = true;
        });
      }
      return false;
    }

    /** The CPU mover alone: no engine threads, no device, no calibration. */
    private static final class CpuOnly {
      static final MoverRegistry REGISTRY = MoverRegistry.open(MoverRegistry.Options.defaults()
          .software(false).dsa(false).calibrate(false));
    }

    /** Opened when first needed (class initialisation is the lock). */
    private static final class Host {
      static final MoverRegistry REGISTRY = MoverRegistry.open();

      static {
        LOG.log(Level.FINE, "data movers of this host:\n{0}", REGISTRY.report());
      }
    }

    private static final class Policy {
      static final PolicyEngine ENGINE = PolicyEngine.builder()
          .hostMovers(Host.REGISTRY)
          // Signals samples only what the model reads (the shipped one reads neither sampled
          // signal, so no sampling thread runs); active streams = moves in flight, as profiled.
          .signals(Signals.start(MovesInFlight::count))
          .build();

      static {
        LOG.log(Level.FINE, "data-movement policy: {0}", ENGINE.status());
      }
    }

    static MoverRegistry cpuRegistry() {
      return CpuOnly.REGISTRY;
    }

    static MoverRegistry registry() {
      return Host.REGISTRY;
    }

    static PolicyEngine policy() {
      return Policy.ENGINE;
    }
  }
}
