package io.grpcshm;

import io.grpc.Internal;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverPolicy;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.dsa.WaitStrategy;
import io.grpcshm.internal.movement.BulkSession;
import io.grpcshm.internal.movement.MoveCounters;
import io.grpcshm.internal.movement.MovementSettings;
import io.grpcshm.internal.movement.MovesInFlight;
import java.util.EnumMap;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * How a shared-memory connection moves large off-heap payloads into shared memory: which data
 * mover (a copy on the sending thread, a copy split over several threads, the software copy
 * engine, Intel DSA) in which mode (sync, async, pipelined), the mover chosen per payload by a
 * {@link MoverPolicy} among the candidates of the move's mode, observable through a
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

  private final MovementSettings settings;

  private DataMovement(MovementSettings settings) {
    this.settings = settings;
  }

  /**
   * The default: this host's movers (opened and calibrated once per process, on the first large
   * off-heap payload) and the learned policy of the {@code io.grpcshm:policy} artifact when it
   * is on the class path ({@link MoverPolicy#forHost}), else the built-in break-even rule
   * ({@link MoverPolicy#breakEven}); deciding in each move's effective mode. Every call returns
   * the same instance.
   */
  public static DataMovement defaults() {
    return Defaults.INSTANCE;
  }

  /** CPU copies only, no policy: the behaviour of a transport without data movers. */
  public static DataMovement cpuOnly() {
    return new Editor(Defaults::cpuRegistry, null, WaitStrategy.spin(), () -> true)
        .edit(e -> {
          e.fixedMover = MoverKind.CPU;
          e.mode = Mode.SYNC;
        });
  }

  /** This policy and these movers (the policy should have been made for these movers). */
  public static DataMovement of(MoverPolicy policy, MoverRegistry movers) {
    Objects.requireNonNull(policy, "policy");
    Objects.requireNonNull(movers, "movers");
    return new Editor(() -> movers, () -> policy, WaitStrategy.hybrid(), () -> true).build();
  }

  /** Always this mover (if available; CPU otherwise), no policy: for benchmarks and tests. */
  public DataMovement withFixedMover(MoverKind mover, MoverRegistry registry) {
    Objects.requireNonNull(mover, "mover");
    Objects.requireNonNull(registry, "registry");
    return edit(e -> {
      e.movers = () -> registry;
      e.policy = null;
      e.fixedMover = mover;
      e.counters = new MoveCounters();
      e.ready = () -> true;
    });
  }

  /** Every move of channels/servers using this configuration runs in {@code mode}. */
  public DataMovement withMode(Mode mode) {
    Objects.requireNonNull(mode, "mode");
    return edit(e -> e.mode = mode);
  }

  /** Payloads smaller than this are copied on the CPU without a decision. */
  public DataMovement withThreshold(int bytes) {
    if (bytes < 0) {
      throw new IllegalArgumentException("threshold < 0: " + bytes);
    }
    return edit(e -> e.threshold = bytes);
  }

  /** Called once per move, on the sending thread, after the move completed. */
  public DataMovement withTracer(MoveTracer tracer) {
    Objects.requireNonNull(tracer, "tracer");
    return edit(e -> e.tracer = tracer);
  }

  /** How the sending thread waits for a mover's completion (default: hybrid sleep-then-poll). */
  public DataMovement withWaitStrategy(WaitStrategy wait) {
    Objects.requireNonNull(wait, "wait");
    return edit(e -> e.wait = wait);
  }

  /**
   * Runs the sends of the current thread in {@code mode} until the returned scope is closed,
   * overriding call options and configuration (e.g. to switch modes between messages of one
   * stream). Scopes nest.
   */
  public static ModeScope scopedMode(Mode mode) {
    return BulkSession.pushMode(Objects.requireNonNull(mode))::run;
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
    MoveCounters c = settings.counters();
    return new MoverCounters(c.moves(mover), c.bytes(mover), c.micros(mover),
        c.cpuFallbacks(mover));
  }

  /** Snapshot of every mover's counters. */
  public Map<MoverKind, MoverCounters> counters() {
    Map<MoverKind, MoverCounters> m = new EnumMap<>(MoverKind.class);
    for (MoverKind k : MoverKind.values()) {
      m.put(k, counters(k));
    }
    return m;
  }

  /** The settings the transport's data movement reads; not for applications. */
  @Internal
  public MovementSettings settings() {
    return settings;
  }

  private DataMovement edit(Consumer<Editor> change) {
    return new Editor(settings).edit(change);
  }

  /** A mutable copy of the settings, so that each {@code with…} names only what it changes. */
  private static final class Editor {
    Supplier<MoverRegistry> movers;
    Supplier<MoverPolicy> policy;
    MoverKind fixedMover;
    Mode mode;
    int threshold = DEFAULT_THRESHOLD;
    MoveTracer tracer;
    WaitStrategy wait;
    MoveCounters counters = new MoveCounters();
    BooleanSupplier ready;
    Supplier<String> notReadyReason = () -> "";

    Editor(Supplier<MoverRegistry> movers, Supplier<MoverPolicy> policy, WaitStrategy wait,
        BooleanSupplier ready) {
      this.movers = movers;
      this.policy = policy;
      this.wait = wait;
      this.ready = ready;
    }

    Editor(MovementSettings s) {
      this(s.movers(), s.policy(), s.waitStrategy(), s.ready());
      fixedMover = s.fixedMover();
      mode = s.mode();
      threshold = s.threshold();
      tracer = s.tracer();
      counters = s.counters();
      notReadyReason = s.notReadyReason();
    }

    DataMovement edit(Consumer<Editor> change) {
      change.accept(this);
      return build();
    }

    DataMovement build() {
      return new DataMovement(new MovementSettings(movers, policy, fixedMover, mode, threshold,
          tracer, wait, counters, ready, notReadyReason));
    }
  }

  /** The process-wide movers and policy, opened on first use (calibration takes ~0.5 s). */
  private static final class Defaults {
    static final DataMovement INSTANCE = new Editor(Defaults::registry, Defaults::policy,
        WaitStrategy.hybrid(), Defaults::ready).edit(e -> e.notReadyReason = Defaults::whyNot);

    /**
     * Opening the movers calibrates them (about a second): done on a background thread the
     * first time a payload could use them, so no call waits for it; CPU copies meanwhile.
     */
    private static final AtomicBoolean started = new AtomicBoolean();
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

    static String whyNot() {
      String f = failure;
      return f != null ? f : "movers are still being opened";
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

    /**
     * The learned policy if its artifact is on the class path, else the built-in rule; active
     * streams = moves in flight, as profiled.
     */
    private static final class Policy {
      static final MoverPolicy CHOSEN = MoverPolicy.forHost(Host.REGISTRY, MovesInFlight::count,
          DataMovement.class.getClassLoader());

      static {
        LOG.log(Level.INFO, "data-movement policy: {0}", CHOSEN.describe());
      }
    }

    static MoverRegistry cpuRegistry() {
      return CpuOnly.REGISTRY;
    }

    static MoverRegistry registry() {
      return Host.REGISTRY;
    }

    static MoverPolicy policy() {
      return Policy.CHOSEN;
    }
  }
}
