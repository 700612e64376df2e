package io.grpcshm.examples;

import io.grpcshm.DataMovement;
import io.grpcshm.MoveEvent;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.policy.PolicyEngine;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The pipeline's "mover" column: which data mover (CPU copy, software copy engine, DSA) grpc-shm's
 * learned policy chose to move a call's tensor into shared memory, in which mode, and the
 * predicted and observed cost of that copy. It registers a {@link io.grpcshm.MoveTracer} on the
 * channel's {@link DataMovement} (the transport's defaults: shipped policy, this host's movers).
 *
 * <p>The predicted copy is what the policy expected the copy to cost, asked before it: the chosen
 * mover's calibrated line on this host (L_fixed + α·size, as the policy measured it) times how
 * the mover's recent copies compared with that line ({@link MoveEvent#expectedCopyMicros()}).
 * It is the same quantity as the observed copy. The policy's own prediction is the cost of a
 * message as profiled (producing it, then the copy), kept apart ({@link #messagePredictedMicros}).
 *
 * <p>The tracer runs on the thread that serialises the request, after the move; with one blocking
 * call at a time on a channel (as the pipeline makes them), the events between
 * {@link #startCall()} and {@link #describeCall()} are that call's. Calls over TCP have none: the
 * movers copy into shared memory only.
 */
final class MoverDecisions {
  /** The column's value for a call that moved nothing through a mover (TCP, small messages). */
  static final String NONE = "-";

  /** A mover's predicted cost of copying {@code bytes} on this host, µs; NaN if unknown. */
  @FunctionalInterface
  interface CopyLine {
    double micros(MoverKind mover, long bytes);
  }

  private final ConcurrentLinkedQueue<MoveEvent> current = new ConcurrentLinkedQueue<>();
  private final Set<String> notes = ConcurrentHashMap.newKeySet();
  private final Set<MoverKind> copied = ConcurrentHashMap.newKeySet();
  private final CopyLine line;

  MoverDecisions() {
    this(MoverDecisions::transportLine);
  }

  MoverDecisions(CopyLine line) {
    this.line = line;
  }

  /**
   * The line the transport's policy measured for {@code mover}, if that policy is the learned
   * one. Reads the process-wide defaults' policy through the transport's settings accessor: the
   * policy measured its lines when the movers were opened, and a demo should show those, not
   * measure again.
   */
  static double transportLine(MoverKind mover, long bytes) {
    return DataMovement.defaults().settings().policy().get() instanceof PolicyEngine e
        ? e.hostLineMicros(mover, bytes) : Double.NaN;
  }

  /** Registers the tracer on {@code builder}'s data movement; returns the builder. */
  ShmChannelBuilder install(ShmChannelBuilder builder) {
    return builder.dataMovement(DataMovement.defaults().withTracer(this::record));
  }

  /** Forgets the moves of earlier calls; call right before a call. */
  void startCall() {
    current.clear();
  }

  /** The tracer (thread-safe). */
  void record(MoveEvent event) {
    current.add(event);
    if (!"warm-up".equals(event.basis())) {
      copied.add(event.cpuFallback() ? MoverKind.CPU : event.mover());
    }
    if (event.note() != null && !event.note().isBlank()) {
      notes.add(event.mover() + (event.cpuFallback() ? "->CPU" : "") + ": " + event.note());
    }
  }

  /** The moves since {@link #startCall()}. */
  List<MoveEvent> callEvents() {
    return new ArrayList<>(current);
  }

  /** The column's text for the moves since {@link #startCall()}. */
  String describeCall() {
    return describe(callEvents());
  }

  /** The column's text for {@code events}, copies predicted by this host's lines. */
  String describe(List<MoveEvent> events) {
    return describe(events, line);
  }

  /** The moves' summed predicted copy µs (this host's lines); NaN without a move or a line. */
  double copyPredictedMicros(List<MoveEvent> events) {
    return copyPredictedMicros(events, line);
  }

  /** Distinct notes the tracer gave so far (why the CPU copied, why a fallback rule was used). */
  List<String> notes() {
    return notes.stream().sorted().toList();
  }

  /**
   * "PARALLEL 0.0 us + 34.10 us/MiB": this host's line of each mover that copied so far (not in
   * warm-up), or why there is none.
   */
  List<String> lines() {
    List<String> out = new ArrayList<>();
    for (MoverKind k : MoverKind.values()) {
      if (copied.contains(k)) {
        double fixed = line.micros(k, 0);
        double slope = line.micros(k, 1 << 20) - fixed;
        out.add(Double.isFinite(fixed) ? String.format(Locale.ROOT, "%s %.1f us + %.2f us/MiB",
            k, fixed, slope) : k + " none (no usable calibration on this host)");
      }
    }
    return out;
  }

  /**
   * "SOFTWARE async+ci 812/790 us": the mover, its mode, "+ci" if asked to inject into the cache,
   * then the copy's predicted (the mover's line) and observed microseconds ("-" without a
   * line). "->CPU" after the mover when it could not copy and the CPU did; the basis in brackets
   * unless it was the model. Several moves in one call with the same choice are summed ("x3");
   * mixed choices are listed by mover ("CPU+SOFTWARE").
   */
  static String describe(List<MoveEvent> events, CopyLine line) {
    if (events.isEmpty()) {
      return NONE;
    }
    double observed = 0;
    for (MoveEvent e : events) {
      observed += e.observedMicros();
    }
    MoveEvent first = events.getFirst();
    boolean uniform = events.stream().allMatch(e -> e.mover() == first.mover()
        && e.mode() == first.mode() && e.cacheInjection() == first.cacheInjection()
        && e.cpuFallback() == first.cpuFallback() && first.basis().equals(e.basis()));
    String choice;
    if (uniform) {
      choice = first.mover() + (first.cpuFallback() ? "->CPU" : "") + " "
          + first.mode().name().toLowerCase(Locale.ROOT) + (first.cacheInjection() ? "+ci" : "")
          + (events.size() > 1 ? " x" + events.size() : "");
    } else {
      choice = String.join("+", events.stream().map(e -> e.mover().name()).distinct().toList());
    }
    String basis = uniform && !"model".equals(first.basis()) ? " (" + first.basis() + ")" : "";
    return choice + " " + micros(copyPredictedMicros(events, line)) + "/" + micros(observed)
        + " us" + basis;
  }

  /**
   * The moves' summed predicted copy µs: what the policy expected each copy to cost, asked
   * before it ({@link MoveEvent#expectedCopyMicros()}), else (a policy without that estimate, or
   * the CPU copying instead of the chosen mover) the copying mover's line; NaN without a move or
   * where neither is known. Moves made while the movers were being opened ({@code warm-up})
   * have none: asking for the lines would wait for the opening.
   */
  static double copyPredictedMicros(List<MoveEvent> events, CopyLine line) {
    if (events.isEmpty()) {
      return Double.NaN;
    }
    double sum = 0;
    for (MoveEvent e : events) {
      if ("warm-up".equals(e.basis())) {
        return Double.NaN;
      }
      sum += Double.isFinite(e.expectedCopyMicros()) ? e.expectedCopyMicros()
          : line.micros(e.cpuFallback() ? MoverKind.CPU : e.mover(), e.bytes());
    }
    return sum;
  }

  /**
   * The policy's summed predicted µs of the moves' messages (producing each, then the copy, as
   * profiled); NaN without a move or without a model prediction.
   */
  static double messagePredictedMicros(List<MoveEvent> events) {
    return events.isEmpty() ? Double.NaN
        : events.stream().mapToDouble(MoveEvent::predictedMicros).sum();
  }

  /** The moves' summed observed µs; NaN without a move. */
  static double observedMicros(List<MoveEvent> events) {
    return events.isEmpty() ? Double.NaN
        : events.stream().mapToDouble(MoveEvent::observedMicros).sum();
  }

  private static String micros(double us) {
    return Double.isFinite(us) && us >= 0 ? String.valueOf(Math.round(us)) : "-";
  }
}
