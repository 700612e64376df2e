package io.grpcshm.policy;

import io.grpcshm.dsa.Calibration;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverChoice;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverPolicy;
import io.grpcshm.dsa.MoverRegistry;
import io.grpcshm.policy.internal.GbdtModel;
import io.grpcshm.policy.internal.LeafMaskScorer;
import io.grpcshm.policy.internal.ModelArtifact;
import io.grpcshm.policy.internal.Schema;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The runtime policy (SkyRocket, thesis ch. 5): for each call, predicts the latency of every
 * configuration this host has with a LightGBM model evaluated in pure Java and picks the argmin
 * among the candidates of the call's mode. Decisions are memoised per feature bucket and mode in
 * an allocation-free two-way set-associative array. Never throws from
 * {@link #decide}: without a usable model, or with unusable features, it applies the documented
 * size-threshold rule ({@link Decision.Basis#FALLBACK}) and logs why (once per kind of problem).
 *
 * <p>The model's trees predict a residual over each mover's calibrated line L_fixed + α·size as
 * recorded on the profiled host. Deployed on another host, those lines are scaled by the host's
 * own calibrations ({@link Builder#hostCalibration}): by how much faster or slower its movers
 * copy than the recorded lines say, averaged over the movers, so the level of every prediction
 * follows this host while the movers' relative costs stay the ones the model learned.
 * {@link #status()} says which calibrations were used and why any was not.
 *
 * <p>Fallback rule: payloads below {@code fallbackThresholdBytes} (default 1 MiB) → CPU; at or
 * above → DSA (no cache injection) if present, else the software engine when the deployment mode
 * is ASYNC/PIPELINED (it only pays off with overlap), else CPU. Mode hint = deployment mode.
 */
public final class PolicyEngine implements MoverPolicy {
  private static final Logger LOG = Logger.getLogger(PolicyEngine.class.getName());
  /** Resource holding the model profiled and trained on the project's reference VM. */
  public static final String DEFAULT_MODEL_RESOURCE = "/io/grpcshm/policy/default-model.txt";
  private static final double CORRECTION_ALPHA = 0.2;
  private static final double CORRECTION_INVALIDATE = 0.05;
  /** {@link #expectedCopyMicros} takes the median of this many recent copies per mover. */
  private static final int RECENT_COPIES = 5;
  /** Smaller copies are dominated by what the lines (fitted at 8–32 MiB) leave out. */
  private static final long RECENT_MIN_BYTES = 1 << 20;

  private final GbdtModel model; // null → fallback only
  private final ModelArtifact artifact;
  /** This host's usable calibrated lines (they scale the model's recorded lines). */
  private final ModelArtifact.Baseline hostLines;
  private final String status;
  private final Mode deploymentMode;
  private final Signals signals;
  private final Candidate[] candidates; // all modes, for the mode hint
  /** The model specialised per candidate: configuration splits resolved at load time. */
  private final GbdtModel[] perCandidate;
  /** Per mode (ordinal): indexes into candidates of that mode. */
  private final int[][] byMode;
  /**
   * The decision memo: a two-way set-associative array of immutable entries (sets are the slot
   * pairs {@code 2k, 2k+1}): a hit costs one or two loads and allocates nothing, a miss
   * recomputes (a few hundred ns), which is cheaper and more predictable than a general-purpose
   * cache's insert and eviction. Entries are immutable (final fields), so racy reads and writes
   * are safe: the worst a race does is drop an entry. Null when caching is disabled.
   */
  private final Entry[] cache;
  /** 64 - log2(cache.length): the slot is the top bits of the key's hash. */
  private final int cacheShift;
  /** Largest memo (entries). */
  static final long MAX_CACHE = 1 << 16;
  /**
   * Per candidate and size bucket, log(1 + the mover's calibrated latency) at the bucket's
   * representative size: added to the trees' residual (all zero for a model without a baseline).
   */
  private final double[][] baseLog;
  /** Whether the model splits on the sampled signals (else they are never read). */
  private final boolean usesPf;
  private final boolean usesLlc;

  private record Entry(long key, Decision decision) {}
  private final long fallbackThreshold;
  private final Set<MoverKind> hostMovers;
  private final boolean correction;
  /**
   * Per mover: observed ÷ line of its last {@link #RECENT_COPIES} synchronous copies of at least
   * {@link #RECENT_MIN_BYTES}, a ring; each row guarded by itself. Only
   * {@link #expectedCopyMicros} reads them, never a decision.
   */
  private final double[][] recentRatios = new double[MoverKind.values().length][RECENT_COPIES];
  /** Per mover: copies recorded in {@link #recentRatios} so far (guarded by that row). */
  private final long[] recentCount = new long[MoverKind.values().length];
  /** log-space correction per candidate × size bucket; racy updates are benign (a hint). */
  private final double[][] corr;
  private final double[][] corrAtInvalidate;
  /**
   * The per-candidate models as leaf-mask tables (no tree walk on a miss), or null when the
   * model does not qualify (categorical splits left, missing-value handling, more than 32 leaves
   * per tree): then misses walk {@link #perCandidate}. Both give the same bits.
   */
  private final LeafMaskScorer scorer;
  /**
   * Per context feature (Schema index 0..4): bucket → the scorer's row offset for that bucket's
   * representative value; null where the models do not split on the feature.
   */
  private final int[][] rowByBucket = new int[Schema.ACTIVE_STREAMS + 1][];
  private final int usedFeatures;

  /** Per mode (ordinal): the candidates not in that mode (scored once per size bucket). */
  private final int[][] others;

  private final class Scratch {
    final double[] x = new double[Schema.WIDTH];
    final int[] offsets = new int[Schema.WIDTH];
    final double[] y = new double[Math.max(1, candidates.length)];
  }

  private final ThreadLocal<Scratch> scratch = ThreadLocal.withInitial(Scratch::new);
  /**
   * Mode hint per size bucket: the mode is a deployment-time choice (thesis §5.4.3), so it is
   * computed — over every candidate, at that call's context — the first time a size bucket
   * misses, and reused by later misses in the bucket. Misses then score only the call mode's
   * candidates. Racy publication of enum constants is benign.
   */
  private final Mode[] modeHintBySize = new Mode[256];
  private final Set<String> warned = ConcurrentHashMap.newKeySet();

  private PolicyEngine(Builder b) {
    this.deploymentMode = b.deploymentMode;
    this.signals = b.signals;
    this.fallbackThreshold = b.fallbackThreshold;
    this.hostMovers = EnumSet.copyOf(b.hostMovers);
    this.hostMovers.add(MoverKind.CPU);
    this.correction = b.onlineCorrection;
    ModelArtifact a = null;
    String why;
    try {
      a = ModelArtifact.parse(b.loadModelText());
      why = null;
    } catch (IOException | RuntimeException e) {
      why = e.getMessage();
    }
    List<Candidate> cands = new ArrayList<>();
    if (a != null) {
      Set<String> trained = Set.of(a.meta("candidates").split(","));
      List<String> skipped = new ArrayList<>();
      for (MoverKind k : MoverKind.values()) {
        if (!hostMovers.contains(k)) {
          continue; // never a candidate where the host lacks it (e.g. DSA here)
        }
        boolean[] injects = k == MoverKind.DSA && b.dsaCacheControl
            ? new boolean[] {false, true} : new boolean[] {false};
        for (boolean inj : injects) {
          String id = Candidate.label(k, inj);
          if (!trained.contains(id)) {
            skipped.add(id);
            continue;
          }
          for (Mode m : Mode.values()) {
            cands.add(new Candidate(k, inj, m));
          }
        }
      }
      if (!skipped.isEmpty()) {
        LOG.warning("host has " + skipped + " but the model was not trained on them "
            + "(trained: " + trained + "): they are not candidates; retrain on this host");
      }
      if (cands.isEmpty()) {
        why = "model knows none of this host's movers " + hostMovers;
        a = null;
      }
    }
    this.artifact = a;
    this.model = a == null ? null : a.model();
    this.candidates = cands.toArray(Candidate[]::new);
    this.perCandidate = new GbdtModel[candidates.length];
    for (int i = 0; i < candidates.length; i++) {
      Candidate c = candidates[i];
      perCandidate[i] = model.specialize(Schema.CATEGORICAL, new double[] {c.mover().ordinal(),
          c.cacheInjection() ? 1 : 0, c.mode().ordinal()});
    }
    this.scorer = leafMasks(perCandidate, rowByBucket,
        a == null ? Double.POSITIVE_INFINITY : a.residualSizeCap());
    this.usedFeatures = scorer == null ? 0 : scorer.usedFeatures().length;
    this.byMode = new int[Mode.values().length][];
    this.others = new int[Mode.values().length][];
    for (Mode m : Mode.values()) {
      byMode[m.ordinal()] = java.util.stream.IntStream.range(0, candidates.length)
          .filter(i -> candidates[i].mode() == m).toArray();
      others[m.ordinal()] = java.util.stream.IntStream.range(0, candidates.length)
          .filter(i -> candidates[i].mode() != m).toArray();
    }
    this.hostLines = ModelArtifact.Baseline.of(b.hostCalibration);
    this.baseLog = new double[candidates.length][256];
    for (int i = 0; i < candidates.length; i++) {
      for (int sb = 0; sb < 256; sb++) {
        baseLog[i][sb] = a.baseLog(hostLines, candidates[i].mover().ordinal(),
            representative(Schema.PAYLOAD_BYTES, sb));
      }
    }
    boolean[] used = model == null ? new boolean[Schema.WIDTH] : model.usedFeatures();
    this.usesPf = used[Schema.PF_RATE];
    this.usesLlc = used[Schema.LLC_PRESSURE];
    int deployedCount = byMode[deploymentMode.ordinal()].length;
    this.status = a == null ? "fallback (size threshold " + fallbackThreshold + " B): " + why
        : String.format(Locale.ROOT, "model %s: %d trees, %d candidates %s, deployment mode %s, "
            + "misses scored by %s%s", b.modelName, model.numTrees(), deployedCount, labels(),
            deploymentMode, scorer != null
                ? String.format(Locale.ROOT, "leaf masks (%d KiB)", scorer.footprintBytes() >> 10)
                : "tree walks", a.baseline().has(MoverKind.CPU.ordinal())
                ? ", residual over the movers' calibrated lines" + (a.residualSizeCap()
                    < Double.POSITIVE_INFINITY ? String.format(Locale.ROOT,
                    " (residual flat above %.0f KiB)", a.residualSizeCap() / 1024) : "")
                    + "; " + lines(a, hostLines, b.hostCalibration) : "");
    if (a == null) {
      LOG.warning("policy model unusable, using the size-threshold fallback: " + why);
    }
    if (b.cacheSize > 0) {
      int n = (int) Math.max(2, Long.highestOneBit(Math.min(MAX_CACHE, b.cacheSize * 2 - 1)));
      this.cache = new Entry[n];
      this.cacheShift = 64 - Integer.numberOfTrailingZeros(n);
    } else {
      this.cache = null;
      this.cacheShift = 64;
    }
    this.corr = new double[candidates.length][256];
    this.corrAtInvalidate = new double[candidates.length][256];
  }

  /**
   * Builds the leaf-mask scorer and the bucket → row tables, from the same representative
   * values {@link #contextOf} feeds the tree walk (sizes capped at the model's residual size
   * cap, as in training). Null when the model does not qualify.
   */
  private static LeafMaskScorer leafMasks(GbdtModel[] models, int[][] rowByBucket,
      double sizeCap) {
    if (models.length == 0) {
      return null;
    }
    LeafMaskScorer s = LeafMaskScorer.of(models);
    if (s == null) {
      return null;
    }
    int[] used = s.usedFeatures();
    for (int f : used) {
      if (f > Schema.ACTIVE_STREAMS) {
        return null; // a configuration feature left unresolved: walk the trees
      }
    }
    int[] buckets = {256, 64, 512, 1024, 256}; // Buckets' ranges, Schema order
    for (int u = 0; u < used.length; u++) {
      int f = used[u];
      int[] tab = new int[buckets[f]];
      for (int b = 0; b < tab.length; b++) {
        double v = representative(f, b);
        tab[b] = s.rowOffset(u, f == Schema.PAYLOAD_BYTES ? Math.min(v, sizeCap) : v);
      }
      rowByBucket[f] = tab;
    }
    return s;
  }

  /** The value a bucket of context feature {@code f} (Schema index) is decided at. */
  private static double representative(int f, int b) {
    return switch (f) {
      case Schema.PAYLOAD_BYTES -> Buckets.representative(b, Buckets.SIZE_SUB);
      case Schema.REUSE_WINDOW -> Buckets.reuseRepresentative(b);
      case Schema.PF_RATE -> Buckets.representative(b, Buckets.PF_SUB) / Buckets.PF_SCALE;
      case Schema.LLC_PRESSURE -> Buckets.representative(b, Buckets.LLC_SUB) / Buckets.LLC_SCALE;
      case Schema.ACTIVE_STREAMS -> b;
      default -> throw new IllegalArgumentException("not a context feature: " + f);
    };
  }

  private static void contextOf(double[] x, int sb, int rb, int pb, int lb, int nb) {
    Schema.context(x, representative(Schema.PAYLOAD_BYTES, sb),
        representative(Schema.REUSE_WINDOW, rb), representative(Schema.PF_RATE, pb),
        representative(Schema.LLC_PRESSURE, lb), representative(Schema.ACTIVE_STREAMS, nb));
  }

  /**
   * The recorded lines, which of this host's calibrations scale them (and why the others do
   * not), and the scale at 1 and 64 MiB.
   */
  private String lines(ModelArtifact a, ModelArtifact.Baseline host,
      Map<MoverKind, Calibration> calibrations) {
    List<String> recorded = new ArrayList<>();
    List<String> scaling = new ArrayList<>();
    List<String> unused = new ArrayList<>();
    for (MoverKind k : MoverKind.values()) {
      int m = k.ordinal();
      if (!a.baseline().has(m)) {
        continue;
      }
      String name = k.name().toLowerCase(Locale.ROOT);
      recorded.add(String.format(Locale.ROOT, "%s %.1f us + %.2f us/MiB%s", name,
          a.baseline().fixedUs()[m], a.baseline().usPerMib()[m],
          a.baseline().measured(m) ? "" : " (defaults, not measured)"));
      if (host.has(m) && a.baseline().measured(m)) {
        scaling.add(String.format(Locale.ROOT, "%s %.1f us + %.2f us/MiB", name,
            host.fixedUs()[m], host.usPerMib()[m]));
      } else if (calibrations.containsKey(k)) {
        String why = ModelArtifact.Baseline.unusable(calibrations.get(k));
        unused.add(name + ": " + (why != null ? why : "its recorded line is not measured"));
      }
    }
    String b = "recorded lines " + recorded;
    if (scaling.isEmpty()) {
      return b + ", unscaled (no usable host calibration" + (unused.isEmpty() ? ""
          : ": " + String.join("; ", unused)) + ")";
    }
    return b + String.format(Locale.ROOT, " scaled to this host by %s (x%.2f at 1 MiB, x%.2f at"
        + " 64 MiB)%s", scaling, Math.exp(a.hostScaleLog(host, 1 << 20)),
        Math.exp(a.hostScaleLog(host, 64 << 20)), unused.isEmpty() ? ""
            : ", not by " + String.join("; ", unused));
  }

  private List<String> labels() {
    List<String> l = new ArrayList<>();
    for (int i : byMode[deploymentMode.ordinal()]) {
      l.add(Candidate.label(candidates[i].mover(), candidates[i].cacheInjection()));
    }
    return l;
  }

  public static Builder builder() { return new Builder(); }

  /**
   * The sizes the profiler calibrates each mover's line at: 8-32 MiB, so α describes copies that
   * leave the caches, as the lines the models' residuals were fitted against. (A mover's own
   * calibration, which its waits use, stops at 4 MiB and has a lower α.)
   */
  private static final long[] CALIBRATION_SIZES = {8 << 20, 16 << 20, 32 << 20};
  /** Samples per calibration size, as the profiler takes them. */
  public static final int CALIBRATION_REPS = 9;

  /** {@link #CALIBRATION_SIZES}, a copy. */
  public static long[] calibrationSizes() { return CALIBRATION_SIZES.clone(); }

  /** Settings; defaults: shipped model, CPU+SOFTWARE+PARALLEL, SYNC, 4096 cached decisions. */
  public static final class Builder {
    private Path modelPath;
    private String modelText;
    private String modelName = "default";
    private Set<MoverKind> hostMovers = EnumSet.of(MoverKind.CPU, MoverKind.SOFTWARE,
        MoverKind.PARALLEL);
    private boolean dsaCacheControl;
    private Mode deploymentMode = Mode.SYNC;
    private Signals signals;
    private long cacheSize = 4096;
    private boolean onlineCorrection;
    private long fallbackThreshold = 1 << 20;
    private Map<MoverKind, Calibration> hostCalibration = Map.of();

    /** A model file written by the {@code train} tool. */
    public Builder model(Path file) { this.modelPath = file; this.modelName = file.toString(); return this; }

    /** Model text (as written by {@code train}). */
    public Builder modelText(String text) { this.modelText = text; this.modelName = "inline"; return this; }

    /** The movers this host has (DSA only if it is really there). CPU is always added. */
    public Builder hostMovers(Set<MoverKind> movers) { this.hostMovers = EnumSet.copyOf(movers); return this; }

    /** The available movers of a registry. */
    public Builder hostMovers(MoverRegistry registry) {
      Set<MoverKind> s = EnumSet.noneOf(MoverKind.class);
      for (MoverKind k : MoverKind.values()) {
        if (registry.find(k).isPresent()) {
          s.add(k);
        }
      }
      return hostMovers(s);
    }

    /**
     * This host's calibrated line per mover: predictions are scaled by these lines relative to
     * the ones recorded in the model ({@link PolicyEngine}). A calibration that was not measured
     * (a rejected one's defaults) does not count; without any, predictions are the profiled
     * host's. The lines should be measured as the profiler measured them
     * ({@link #calibrationSizes()}).
     */
    public Builder hostCalibration(Map<MoverKind, Calibration> calibrations) {
      this.hostCalibration = Map.copyOf(calibrations);
      return this;
    }

    /**
     * Measures this host's line for every available mover of {@code registry} at the
     * profiler's sizes ({@link #calibrationSizes()}), for {@link #hostCalibration(Map)}. Takes
     * up to a second or two per mover; the movers' own calibrations (what their waits use) are
     * not changed.
     */
    public Builder hostCalibration(MoverRegistry registry) {
      Map<MoverKind, Calibration> m = new EnumMap<>(MoverKind.class);
      for (MoverKind k : MoverKind.values()) {
        if (registry.find(k).isPresent()) {
          m.put(k, registry.measure(k, CALIBRATION_SIZES, CALIBRATION_REPS));
        }
      }
      return hostCalibration(m);
    }

    /** Whether the DSA device honours cache control (then inject/bypass are two candidates). */
    public Builder dsaCacheControl(boolean cc) { this.dsaCacheControl = cc; return this; }

    /**
     * The mode of calls that do not name one ({@link #decide(long, int)},
     * {@link #decide(CallFeatures)}); decisions are argmins within the call's mode.
     */
    public Builder deploymentMode(Mode m) { this.deploymentMode = Objects.requireNonNull(m); return this; }

    /** Needed by {@link #decide(long, int)}. */
    public Builder signals(Signals s) { this.signals = s; return this; }

    /** Decisions memoised (0 disables caching; rounded to a power of two, at most 65536). */
    public Builder cacheSize(long n) { this.cacheSize = n; return this; }

    /** Correct predictions from {@link #observe} (off by default, see docs/POLICY.md). */
    public Builder onlineCorrection(boolean on) { this.onlineCorrection = on; return this; }

    public Builder fallbackThresholdBytes(long bytes) { this.fallbackThreshold = bytes; return this; }

    public PolicyEngine build() { return new PolicyEngine(this); }

    String loadModelText() throws IOException {
      if (modelText != null) {
        return modelText;
      }
      if (modelPath != null) {
        return Files.readString(modelPath, StandardCharsets.UTF_8);
      }
      try (InputStream in = PolicyEngine.class.getResourceAsStream(DEFAULT_MODEL_RESOURCE)) {
        if (in == null) {
          throw new IOException("no default model resource " + DEFAULT_MODEL_RESOURCE);
        }
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    }
  }

  /** "model …" or "fallback …: why". */
  public String status() { return status; }

  /** True when decisions come from a model (not the fallback rule). */
  public boolean hasModel() { return model != null; }

  /** Candidates scored per decision (all modes; the argmin is taken in the deployment mode). */
  public List<Candidate> candidates() { return List.of(candidates); }

  public Mode deploymentMode() { return deploymentMode; }

  /** Model metadata (provenance, signal sources it was trained with); empty without a model. */
  public String modelInfo(String key) { return artifact == null ? "" : artifact.meta(key); }

  /**
   * Decides in the deployment mode with the live {@link Signals} for a call of this size and
   * reuse hint.
   */
  public Decision decide(long payloadBytes, int reuseWindow) {
    return decide(payloadBytes, reuseWindow, deploymentMode);
  }

  /**
   * Decides among the candidates of {@code mode} (the mode the call's move will run in) with the
   * live {@link Signals}. A signal the model does not split on is not read, so a sampler that
   * nobody reads never starts ({@link Signals}).
   */
  public Decision decide(long payloadBytes, int reuseWindow, Mode mode) {
    Signals s = signals;
    if (s == null) {
      return fallback(payloadBytes, "no Signals configured for decide(size, reuse)", mode);
    }
    return decide(payloadBytes, reuseWindow, usesPf ? s.pageFaultRate() : 0,
        usesLlc ? s.llcPressure() : 0, s.activeStreams(), mode);
  }

  public Decision decide(CallFeatures f) {
    return decide(f, deploymentMode);
  }

  /** Decides among the candidates of {@code mode} for these features. */
  public Decision decide(CallFeatures f, Mode mode) {
    return decide(f.payloadBytes(), f.reuseWindow(), f.pageFaultRate(), f.llcPressure(),
        f.activeStreams(), mode);
  }

  /** {@link #decide(long, int, Mode)}: the transport's entry point. */
  @Override
  public Decision choose(long bytes, int reuseWindow, Mode mode) {
    return decide(bytes, reuseWindow, mode);
  }

  /** {@link #observe(Decision, CallFeatures, double)} with the live signals. */
  @Override
  public void observe(MoverChoice choice, long bytes, int reuseWindow, Mode mode,
      double observedMicros) {
    recordCopy(choice.mover(), bytes, observedMicros);
    Signals s = signals;
    if (!correction || s == null || !(choice instanceof Decision d)) {
      return;
    }
    observe(d, new CallFeatures(bytes, reuseWindow, usesPf ? s.pageFaultRate() : 0,
        usesLlc ? s.llcPressure() : 0, s.activeStreams()), observedMicros);
  }

  @Override
  public String describe() {
    return "learned policy: " + status;
  }

  /** Whether the model uses the sampled page-fault rate or LLC pressure. */
  public boolean usesSampledSignals() {
    return usesPf || usesLlc;
  }

  private Decision decide(long size, int reuse, double pf, double llc, int streams, Mode mode) {
    if (mode == null) {
      mode = deploymentMode;
    }
    try {
      if (model == null) {
        return fallback(size, status, mode);
      }
      String problem = problem(size, reuse, pf, llc, streams);
      if (problem != null) {
        return fallback(size, problem, mode);
      }
      int sb = Buckets.sizeBucket(size);
      int rb = Buckets.reuseBucket(reuse);
      int pb = Buckets.pfBucket(pf);
      int lb = Buckets.llcBucket(llc);
      int nb = Buckets.streamsBucket(streams);
      Entry[] t = cache;
      int mi = mode.ordinal();
      if (t == null) {
        return compute(sb, rb, pb, lb, nb, mi);
      }
      long key = Buckets.key(sb, rb, pb, lb, nb) | ((long) mi << Buckets.KEY_BITS);
      int slot = (int) ((key * 0x9E3779B97F4A7C15L) >>> cacheShift);
      Entry e = t[slot];
      if (e != null && e.key() == key) {
        return e.decision();
      }
      Entry other = t[slot ^ 1];
      if (other != null && other.key() == key) {
        return other.decision();
      }
      Decision d = compute(sb, rb, pb, lb, nb, mi);
      if (e != null) {
        t[slot ^ 1] = e; // the set's other way now holds the previous occupant
      }
      t[slot] = new Entry(key, d);
      return d;
    } catch (RuntimeException e) {
      return fallback(size, "decision failed: " + e, mode);
    }
  }

  private static String problem(long size, int reuse, double pf, double llc, int streams) {
    if (size < 0 || reuse < CallFeatures.REUSE_UNKNOWN || streams < 0
        || !(pf >= 0 && pf < Double.POSITIVE_INFINITY)
        || !(llc >= 0 && llc < Double.POSITIVE_INFINITY)) {
      return new CallFeatures(size, reuse, pf, llc, streams).problem();
    }
    return null;
  }

  private Decision compute(int sb, int rb, int pb, int lb, int nb, int mi) {
    Scratch sc = scratch.get();
    int[] off = null;
    double[] x = null;
    if (scorer != null) {
      off = sc.offsets;
      int k = 0;
      int[][] t = rowByBucket;
      if (t[Schema.PAYLOAD_BYTES] != null) {
        off[k++] = t[Schema.PAYLOAD_BYTES][sb];
      }
      if (t[Schema.REUSE_WINDOW] != null) {
        off[k++] = t[Schema.REUSE_WINDOW][rb];
      }
      if (t[Schema.PF_RATE] != null) {
        off[k++] = t[Schema.PF_RATE][pb];
      }
      if (t[Schema.LLC_PRESSURE] != null) {
        off[k++] = t[Schema.LLC_PRESSURE][lb];
      }
      if (t[Schema.ACTIVE_STREAMS] != null) {
        off[k++] = t[Schema.ACTIVE_STREAMS][nb];
      }
    } else {
      x = sc.x;
      contextOf(x, sb, rb, pb, lb, nb);
      x[Schema.PAYLOAD_BYTES] = artifact.treeSize(x[Schema.PAYLOAD_BYTES]);
    }
    double[] y = sc.y;
    int[] deployed = byMode[mi];
    scoreAll(deployed, off, x, y);
    double bestDeployed = Double.POSITIVE_INFINITY;
    int bestDeployedIdx = -1;
    for (int k = 0; k < deployed.length; k++) {
      int i = deployed[k];
      double v = y[k] + baseLog[i][sb] + (correction ? corr[i][sb] : 0);
      if (v < bestDeployed) {
        bestDeployed = v;
        bestDeployedIdx = i;
      }
    }
    if (bestDeployedIdx < 0) {
      throw new IllegalStateException("model predicted no finite latency");
    }
    Mode hint = modeHintBySize[sb];
    if (hint == null) {
      int[] rest = others[mi];
      scoreAll(rest, off, x, y);
      double bestAll = bestDeployed;
      hint = candidates[bestDeployedIdx].mode();
      for (int k = 0; k < rest.length; k++) {
        int i = rest[k];
        double v = y[k] + baseLog[i][sb] + (correction ? corr[i][sb] : 0);
        if (v < bestAll) {
          bestAll = v;
          hint = candidates[i].mode();
        }
      }
      modeHintBySize[sb] = hint;
    }
    Candidate c = candidates[bestDeployedIdx];
    return new Decision(c.mover(), c.cacheInjection(), hint, Math.expm1(bestDeployed),
        Decision.Basis.MODEL, "");
  }

  /**
   * Raw scores of candidates {@code idx} into {@code y}: leaf masks when available (row
   * offsets {@code off}), else the tree walk at {@code x}.
   */
  private void scoreAll(int[] idx, int[] off, double[] x, double[] y) {
    if (scorer != null) {
      scorer.scoreAll(idx, off, usedFeatures, y);
    } else {
      for (int k = 0; k < idx.length; k++) {
        y[k] = perCandidate[idx[k]].predict(x);
      }
    }
  }

  /**
   * This host's calibrated line for {@code mover} at {@code bytes}, µs: L_fixed + α·size as
   * measured for this engine ({@link Builder#hostCalibration}). That is the cost of the copy
   * alone on pre-faulted buffers, not of a message as profiled ({@link #predictMicros}); NaN
   * without a usable calibration of the mover.
   */
  public double hostLineMicros(MoverKind mover, long bytes) {
    int m = mover.ordinal();
    return hostLines.has(m) ? hostLines.fixedUs()[m] + hostLines.usPerMib()[m] * bytes
        / (1 << 20) : Double.NaN;
  }

  /**
   * What a copy of {@code bytes} by {@code mover} is expected to cost now, µs: its line on this
   * host ({@link #hostLineMicros}) times the median ratio of observed to line over the mover's
   * last five synchronous copies of at least 1 MiB ({@link #observe(MoverChoice, long, int, Mode,
   * double)} feeds them). The line is measured on an idle host on reused buffers at 8–32 MiB;
   * the ratio carries what it leaves out where the copies run: the other cores busy (a split
   * copy's helper without a core), other processes' memory traffic, sizes far beyond the cache.
   * The median ignores a copy into memory touched for the first time. The line alone until three
   * copies were seen; NaN without a line. Decisions do not use it.
   */
  @Override
  public double expectedCopyMicros(MoverKind mover, long bytes) {
    double line = hostLineMicros(mover, bytes);
    if (!(line > 0)) {
      return line;
    }
    double[] row = recentRatios[mover.ordinal()];
    double[] recent;
    synchronized (row) {
      int n = (int) Math.min(RECENT_COPIES, recentCount[mover.ordinal()]);
      if (n < 3) {
        return line;
      }
      recent = java.util.Arrays.copyOf(row, n);
    }
    java.util.Arrays.sort(recent);
    int n = recent.length;
    double median = n % 2 == 1 ? recent[n / 2] : (recent[n / 2 - 1] + recent[n / 2]) / 2;
    return line * median;
  }

  /** Records one synchronous copy's observed ÷ line for {@link #expectedCopyMicros}. */
  private void recordCopy(MoverKind mover, long bytes, double observedMicros) {
    if (mover == null || bytes < RECENT_MIN_BYTES || !(observedMicros > 0)) {
      return;
    }
    double line = hostLineMicros(mover, bytes);
    if (!(line > 0)) {
      return;
    }
    int m = mover.ordinal();
    double[] row = recentRatios[m];
    synchronized (row) {
      row[(int) (recentCount[m]++ % RECENT_COPIES)] = observedMicros / line;
    }
  }

  /** Predicted latency per message, µs, of one candidate for these features (no cache). */
  public double predictMicros(CallFeatures f, Candidate c) {
    if (model == null) {
      return Double.NaN;
    }
    double[] x = new double[Schema.WIDTH];
    Schema.context(x, f.payloadBytes(), f.reuseWindow(), f.pageFaultRate(), f.llcPressure(),
        f.activeStreams());
    Schema.config(x, c.mover(), c.cacheInjection(), c.mode());
    return Math.expm1(artifact.predictLog(x, hostLines));
  }

  /**
   * Feeds back the latency a decision achieved (µs per message). With online correction on, the
   * residual in log space moves an exponentially weighted offset for that candidate and size
   * bucket; when an offset moved by more than 5 % the decision cache is flushed.
   */
  public void observe(Decision d, CallFeatures f, double latencyMicros) {
    if (!correction || model == null || d.basis() != Decision.Basis.MODEL
        || !(latencyMicros >= 0) || f.problem() != null) {
      return;
    }
    int idx = -1;
    for (int i : byMode[deploymentMode.ordinal()]) {
      if (candidates[i].mover() == d.mover() && candidates[i].cacheInjection() == d.cacheInjection()) {
        idx = i;
      }
    }
    if (idx < 0) {
      return;
    }
    int sb = Buckets.sizeBucket(f.payloadBytes());
    double[] x = new double[Schema.WIDTH];
    contextOf(x, sb, Buckets.reuseBucket(f.reuseWindow()), Buckets.pfBucket(f.pageFaultRate()),
        Buckets.llcBucket(f.llcPressure()), Buckets.streamsBucket(f.activeStreams()));
    Candidate c = candidates[idx];
    Schema.config(x, c.mover(), c.cacheInjection(), c.mode());
    double residual = Math.log1p(latencyMicros) - artifact.predictLog(x, hostLines);
    double v = (1 - CORRECTION_ALPHA) * corr[idx][sb] + CORRECTION_ALPHA * residual;
    corr[idx][sb] = v;
    if (Math.abs(v - corrAtInvalidate[idx][sb]) > CORRECTION_INVALIDATE) {
      corrAtInvalidate[idx][sb] = v;
      if (cache != null) {
        java.util.Arrays.fill(cache, null);
      }
      java.util.Arrays.fill(modeHintBySize, null);
    }
  }

  Decision fallback(long size, String why) {
    return fallback(size, why, deploymentMode);
  }

  /** The documented size-threshold rule in {@code mode}; logs why the model was not used. */
  Decision fallback(long size, String why, Mode mode) {
    String kind = why.length() > 24 ? why.substring(0, 24) : why;
    if (warned.add(kind)) {
      LOG.warning("policy fallback (size-threshold rule): " + why);
    } else {
      LOG.log(Level.FINE, "policy fallback: {0}", why);
    }
    MoverKind m = MoverKind.CPU;
    if (size >= fallbackThreshold) {
      if (hostMovers.contains(MoverKind.DSA)) {
        m = MoverKind.DSA;
      } else if (mode != Mode.SYNC && hostMovers.contains(MoverKind.SOFTWARE)) {
        m = MoverKind.SOFTWARE;
      }
    }
    return new Decision(m, false, mode, Double.NaN, Decision.Basis.FALLBACK, why);
  }
}
