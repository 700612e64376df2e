package io.grpcshm.policy.internal;

import io.grpcshm.dsa.Calibration;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The profiling trace format (CSV, one row per workload × candidate). Columns are found by name,
 * so extra columns are ignored and the order may change; a missing required column, a bad value
 * or a NaN feature is an {@link IllegalArgumentException} naming the file, line and column.
 */
public final class TraceCsv {
  private TraceCsv() {}

  /** Written by the profiler in this order. */
  public static final List<String> COLUMNS = List.of("run_id", "workload_id", "payload_bytes",
      "reuse_window", "pf_rate", "llc_pressure", "active_streams", "mover", "cache_injection",
      "mode", "latency_us", "hogs", "clients", "fresh_buffers", "pf_source", "llc_source", "reps",
      "spread", "load1", "base_fixed_us", "base_us_per_mib");

  /** What training and evaluation need. */
  public static final List<String> REQUIRED = List.of("workload_id", "payload_bytes",
      "reuse_window", "pf_rate", "llc_pressure", "active_streams", "mover", "cache_injection",
      "mode", "latency_us");

  /**
   * One measured (workload, candidate). {@code baseFixedUs} and {@code baseUsPerMib} are the
   * mover's calibrated line (dsa-bindings' {@code Calibration}, L_fixed + α·size) on the
   * profiled host, NaN in traces recorded before the profiler wrote them.
   */
  public record Row(String runId, String workloadId, long payloadBytes, int reuseWindow,
      double pfRate, double llcPressure, int activeStreams, MoverKind mover,
      boolean cacheInjection, Mode mode, double latencyUs, int hogs, int clients, boolean fresh,
      String pfSource, String llcSource, int reps, double spread, double load1,
      double baseFixedUs, double baseUsPerMib) {

    /** A row without the mover's calibrated line (NaN: unknown). */
    public Row(String runId, String workloadId, long payloadBytes, int reuseWindow,
        double pfRate, double llcPressure, int activeStreams, MoverKind mover,
        boolean cacheInjection, Mode mode, double latencyUs, int hogs, int clients,
        boolean fresh, String pfSource, String llcSource, int reps, double spread,
        double load1) {
      this(runId, workloadId, payloadBytes, reuseWindow, pfRate, llcPressure, activeStreams,
          mover, cacheInjection, mode, latencyUs, hogs, clients, fresh, pfSource, llcSource,
          reps, spread, load1, Double.NaN, Double.NaN);
    }

    /** True when the row carries its mover's calibrated line. */
    public boolean hasBaseline() {
      return baseFixedUs >= 0 && baseUsPerMib > 0;
    }

    /**
     * The mover's calibration as the profiled host had it, or null without one. The defaults of
     * a rejected calibration come back as such (not measured), as the runtime would have them.
     */
    public Calibration calibration() {
      if (!hasBaseline()) {
        return null;
      }
      Calibration defaults = Calibration.fallback("rejected when " + runId + " was profiled");
      if (Math.round(baseFixedUs * 1000) == defaults.fixedNanos()
          && Math.abs(baseUsPerMib - defaults.microsPerMiB()) < 1e-3) {
        return defaults;
      }
      return new Calibration(Math.round(baseFixedUs * 1000), baseUsPerMib * 1000 / (1 << 20),
          new long[0], new long[0], true);
    }

    /** A row without the measurement-quality columns (reps 0, spread and load1 -1: unknown). */
    public Row(String runId, String workloadId, long payloadBytes, int reuseWindow,
        double pfRate, double llcPressure, int activeStreams, MoverKind mover,
        boolean cacheInjection, Mode mode, double latencyUs, int hogs, int clients,
        boolean fresh, String pfSource, String llcSource) {
      this(runId, workloadId, payloadBytes, reuseWindow, pfRate, llcPressure, activeStreams,
          mover, cacheInjection, mode, latencyUs, hogs, clients, fresh, pfSource, llcSource, 0,
          -1, -1);
    }

    public void features(double[] x) {
      Schema.context(x, payloadBytes, reuseWindow, pfRate, llcPressure, activeStreams);
      Schema.config(x, mover, cacheInjection, mode);
    }

    public String toCsv() {
      return String.join(",", runId, workloadId, Long.toString(payloadBytes),
          Integer.toString(reuseWindow), fmt(pfRate), fmt(llcPressure),
          Integer.toString(activeStreams), mover.name(), cacheInjection ? "1" : "0", mode.name(),
          fmt(latencyUs), Integer.toString(hogs), Integer.toString(clients), fresh ? "1" : "0",
          pfSource, llcSource, Integer.toString(reps), fmt(spread), fmt(load1),
          Double.isNaN(baseFixedUs) ? "" : fmt(baseFixedUs),
          Double.isNaN(baseUsPerMib) ? "" : String.format(Locale.ROOT, "%.6f", baseUsPerMib));
    }
  }

  public static String header() {
    return String.join(",", COLUMNS);
  }

  static String fmt(double v) {
    return String.format(Locale.ROOT, "%.4f", v);
  }

  public static List<Row> read(Path file) throws IOException {
    try (BufferedReader r = Files.newBufferedReader(file)) {
      String head = r.readLine();
      if (head == null) {
        throw new IllegalArgumentException(file + ": empty trace file (no header)");
      }
      String[] names = head.trim().split(",", -1);
      Map<String, Integer> idx = new HashMap<>();
      for (int k = 0; k < names.length; k++) {
        idx.put(names[k].trim(), k);
      }
      List<String> missing = new ArrayList<>();
      for (String c : REQUIRED) {
        if (!idx.containsKey(c)) {
          missing.add(c);
        }
      }
      if (!missing.isEmpty()) {
        throw new IllegalArgumentException(file + ": trace is missing column(s) " + missing
            + " (required: " + REQUIRED + ")");
      }
      List<Row> rows = new ArrayList<>();
      String line;
      int lineNo = 1;
      while ((line = r.readLine()) != null) {
        lineNo++;
        if (line.isBlank()) {
          continue;
        }
        String[] f = line.split(",", -1);
        Cell c = new Cell(file, lineNo, f, idx);
        rows.add(new Row(c.str("run_id", ""), c.str("workload_id", null),
            (long) c.num("payload_bytes"), (int) c.num("reuse_window"), c.num("pf_rate"),
            c.num("llc_pressure"), (int) c.num("active_streams"), c.mover(),
            c.num("cache_injection") != 0, c.mode(), c.num("latency_us"),
            (int) c.numOr("hogs", 0), (int) c.numOr("clients", 1), c.numOr("fresh_buffers", 0) != 0,
            c.str("pf_source", ""), c.str("llc_source", ""), (int) c.numOr("reps", 0),
            c.numOr("spread", -1), c.numOr("load1", -1), c.optional("base_fixed_us"),
            c.optional("base_us_per_mib")));
      }
      return rows;
    }
  }

  /**
   * Per run id, each mover's calibration as the profiler recorded it ({@link Row#calibration});
   * a run calibrated each mover once, so rows of one run and mover that disagree are an error.
   */
  public static Map<String, Map<MoverKind, Calibration>> calibrations(List<Row> rows) {
    Map<String, Map<MoverKind, Calibration>> out = new LinkedHashMap<>();
    for (Row r : rows) {
      Calibration c = r.calibration();
      if (c == null) {
        continue;
      }
      Map<MoverKind, Calibration> run = out.computeIfAbsent(r.runId(),
          k -> new EnumMap<>(MoverKind.class));
      Calibration seen = run.putIfAbsent(r.mover(), c);
      if (seen != null && (seen.fixedNanos() != c.fixedNanos()
          || Math.abs(seen.nanosPerByte() - c.nanosPerByte()) > 1e-9 * seen.nanosPerByte())) {
        throw new IllegalArgumentException("run " + r.runId() + " has two calibrated lines for "
            + r.mover() + ": " + seen + " and " + c);
      }
    }
    return out;
  }

  /** Workload ids with at least {@code candidates} rows: done, for resuming a sweep. */
  public static Map<String, Integer> rowsPerWorkload(List<Row> rows) {
    Map<String, Integer> m = new HashMap<>();
    for (Row r : rows) {
      m.merge(r.workloadId(), 1, Integer::sum);
    }
    return m;
  }

  private record Cell(Path file, int line, String[] f, Map<String, Integer> idx) {
    String raw(String col) {
      Integer k = idx.get(col);
      if (k == null) {
        return null;
      }
      if (k >= f.length) {
        throw new IllegalArgumentException(file + ":" + line + ": row has " + f.length
            + " fields, column '" + col + "' is field " + (k + 1));
      }
      return f[k].trim();
    }

    String str(String col, String dflt) {
      String v = raw(col);
      if (v == null || v.isEmpty()) {
        if (dflt == null) {
          throw new IllegalArgumentException(file + ":" + line + ": empty " + col);
        }
        return dflt;
      }
      return v;
    }

    double num(String col) {
      String v = raw(col);
      double d;
      try {
        d = Double.parseDouble(v);
      } catch (NumberFormatException | NullPointerException e) {
        throw new IllegalArgumentException(file + ":" + line + ": column '" + col
            + "' is not a number: '" + v + "'");
      }
      if (!Double.isFinite(d)) {
        throw new IllegalArgumentException(file + ":" + line + ": column '" + col + "' is " + v
            + " (NaN/infinite features are not allowed)");
      }
      return d;
    }

    /** NaN where the column is absent or empty (not measured). */
    double optional(String col) {
      String v = raw(col);
      return v == null || v.isEmpty() ? Double.NaN : num(col);
    }

    double numOr(String col, double dflt) {
      return idx.containsKey(col) ? num(col) : dflt;
    }

    MoverKind mover() {
      String v = str("mover", null);
      try {
        return MoverKind.valueOf(v.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(file + ":" + line + ": unknown mover '" + v + "'");
      }
    }

    Mode mode() {
      String v = str("mode", null);
      try {
        return Mode.parse(v);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(file + ":" + line + ": unknown mode '" + v + "'");
      }
    }
  }
}
