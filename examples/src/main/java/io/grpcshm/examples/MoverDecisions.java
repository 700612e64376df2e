package io.grpcshm.examples;

import io.grpcshm.DataMovement;
import io.grpcshm.MoveEvent;
import io.grpcshm.ShmChannelBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The pipeline's "mover" column: which data mover (CPU copy, software copy engine, DSA) grpc-shm's
 * learned policy chose to move a call's tensor into shared memory, in which mode, and the
 * predicted and observed cost. It registers a {@link io.grpcshm.MoveTracer} on the channel's
 * {@link DataMovement} (the transport's defaults: shipped policy, this host's movers).
 *
 * <p>The tracer runs on the thread that serialises the request, after the move; with one blocking
 * call at a time on a channel (as the pipeline makes them), the events between
 * {@link #startCall()} and {@link #describeCall()} are that call's. Calls over TCP have none: the
 * movers copy into shared memory only.
 */
final class MoverDecisions {
  /** The column's value for a call that moved nothing through a mover (TCP, small messages). */
  static final String NONE = "-";

  private final ConcurrentLinkedQueue<MoveEvent> current = new ConcurrentLinkedQueue<>();
  private final Set<String> notes = ConcurrentHashMap.newKeySet();

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

  /** Distinct notes the tracer gave so far (why the CPU copied, why a fallback rule was used). */
  List<String> notes() {
    return notes.stream().sorted().toList();
  }

  /**
   * "SOFTWARE async+ci 812/790 us": the mover, its mode, "+ci" if asked to inject into the cache,
   * then predicted/observed microseconds ("-" without a model prediction). "->CPU" after the
   * mover when it could not copy and the CPU did; the basis in brackets unless it was the model.
   * Several moves in one call with the same choice are summed ("x3"); mixed choices are listed
   * by mover ("CPU+SOFTWARE").
   */
  static String describe(List<MoveEvent> events) {
    if (events.isEmpty()) {
      return NONE;
    }
    double predicted = 0;
    double observed = 0;
    for (MoveEvent e : events) {
      predicted += e.predictedMicros();
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
    return choice + " " + micros(predicted) + "/" + micros(observed) + " us" + basis;
  }

  /** The moves' summed predicted µs; NaN without a move or without a model prediction. */
  static double predictedMicros(List<MoveEvent> events) {
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
