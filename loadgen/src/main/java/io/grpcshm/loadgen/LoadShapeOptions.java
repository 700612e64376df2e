package io.grpcshm.loadgen;

import java.time.Duration;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * ghz's load and concurrency schedules (--load-* and --concurrency-*), checked and turned into
 * {@link Schedule}s. Rates and worker counts must stay positive for the whole run, so a falling
 * schedule needs an end (or a max duration that stops it in time).
 */
final class LoadShapeOptions {
  @Option(names = "--load-schedule", paramLabel = "const|step|line", defaultValue = "const",
      description = "Rate schedule: const (-r), step or line (--load-start, --load-step, "
          + "--load-end, --load-step-duration, --load-max-duration). Default: const.")
  String loadSchedule;

  @Option(names = "--load-start", paramLabel = "RATE", description = "Starting calls/s.")
  Double loadStart;

  @Option(names = "--load-step", paramLabel = "RATE",
      description = "Change of calls/s per step (step) or per second (line); may be negative.")
  Double loadStep;

  @Option(names = "--load-end", paramLabel = "RATE",
      description = "Calls/s at which the adjustment stops (optional).")
  Double loadEnd;

  @Option(names = "--load-step-duration", paramLabel = "DURATION", converter = GoDuration.class,
      description = "Length of each step (step schedule only; line steps every 1s).")
  Duration loadStepDuration;

  @Option(names = "--load-max-duration", paramLabel = "DURATION", converter = GoDuration.class,
      description = "Stop adjusting the rate after this long (optional).")
  Duration loadMaxDuration;

  @Option(names = "--concurrency-schedule", paramLabel = "const|step|line",
      defaultValue = "const", description = "Worker schedule: const (-c), step or line "
          + "(--concurrency-start, -step, -end, -step-duration, -max-duration). Default: const.")
  String concurrencySchedule;

  @Option(names = "--concurrency-start", paramLabel = "N", description = "Starting workers.")
  Integer concurrencyStart;

  @Option(names = "--concurrency-step", paramLabel = "N",
      description = "Change of workers per step (step) or per second (line); may be negative.")
  Integer concurrencyStep;

  @Option(names = "--concurrency-end", paramLabel = "N",
      description = "Workers at which the adjustment stops.")
  Integer concurrencyEnd;

  @Option(names = "--concurrency-step-duration", paramLabel = "DURATION",
      converter = GoDuration.class, description = "Length of each step (step schedule only).")
  Duration concurrencyStepDuration;

  @Option(names = "--concurrency-max-duration", paramLabel = "DURATION",
      converter = GoDuration.class, description = "Stop adjusting workers after this long.")
  Duration concurrencyMaxDuration;

  /** The rate schedule, or null for no rate limit. */
  Schedule rate(Double rps, CommandLine cl) {
    String kind = kind(loadSchedule, "--load-schedule", cl);
    if (kind.equals("const")) {
      refuseShapeFlags(cl, "load", "-r", loadStart, loadStep, loadEnd, loadStepDuration,
          loadMaxDuration);
      return rps == null ? null : Schedule.constant(rps);
    }
    if (rps != null) {
      throw new ParameterException(cl, "-r sets a constant rate; a " + kind + " load schedule "
          + "starts at --load-start instead: drop -r");
    }
    return shape(cl, kind, "load", loadStart, loadStep, loadEnd, loadStepDuration,
        loadMaxDuration);
  }

  /** The worker schedule; const uses -c (or the default). */
  Schedule concurrency(Integer c, int defaultC, CommandLine cl) {
    String kind = kind(concurrencySchedule, "--concurrency-schedule", cl);
    if (kind.equals("const")) {
      refuseShapeFlags(cl, "concurrency", "-c", concurrencyStart, concurrencyStep,
          concurrencyEnd, concurrencyStepDuration, concurrencyMaxDuration);
      return Schedule.constant(c == null ? defaultC : c);
    }
    if (c != null) {
      throw new ParameterException(cl, "-c sets a constant number of workers; a " + kind
          + " concurrency schedule starts at --concurrency-start instead: drop -c");
    }
    Schedule s = shape(cl, kind, "concurrency", toDouble(concurrencyStart),
        toDouble(concurrencyStep), toDouble(concurrencyEnd), concurrencyStepDuration,
        concurrencyMaxDuration);
    if (s.step() > 0 && s.lastStep() == Schedule.NEVER) {
      throw new ParameterException(cl, "a rising concurrency schedule needs --concurrency-end "
          + "or --concurrency-max-duration (each worker is a thread)");
    }
    return s;
  }

  private static Double toDouble(Integer i) {
    return i == null ? null : i.doubleValue();
  }

  private static String kind(String value, String flag, CommandLine cl) {
    String k = value.trim().toLowerCase(Locale.ROOT);
    if (!k.equals("const") && !k.equals("step") && !k.equals("line")) {
      throw new ParameterException(cl, flag + " must be const, step or line, got '" + value
          + "'");
    }
    return k;
  }

  private static void refuseShapeFlags(CommandLine cl, String what, String constFlag,
      Object... values) {
    for (Object v : values) {
      if (v != null) {
        throw new ParameterException(cl, "--" + what + "-start/-step/-end/-step-duration/"
            + "-max-duration only apply to a step or line --" + what + "-schedule (the const "
            + "schedule uses " + constFlag + ")");
      }
    }
  }

  private static Schedule shape(CommandLine cl, String kind, String what, Double start,
      Double step, Double end, Duration stepDuration, Duration maxDuration) {
    String p = "--" + what + "-";
    if (start == null || !(start > 0)) {
      throw new ParameterException(cl, "a " + kind + " " + what + " schedule needs " + p
          + "start > 0" + (start == null ? "" : ", got " + Report.number(start)));
    }
    if (step == null || step == 0) {
      throw new ParameterException(cl, "a " + kind + " " + what + " schedule needs a non-zero "
          + p + "step (" + (kind.equals("line") ? "the change per second" : "the change per step")
          + ")");
    }
    long stepNanos;
    if (kind.equals("line")) {
      if (stepDuration != null) {
        throw new ParameterException(cl, "a line " + what + " schedule changes every 1s; "
            + p + "step-duration is for a step schedule");
      }
      stepNanos = 1_000_000_000L;
    } else {
      if (stepDuration == null || stepDuration.isNegative() || stepDuration.isZero()) {
        throw new ParameterException(cl, "a step " + what + " schedule needs a positive "
            + p + "step-duration");
      }
      stepNanos = stepDuration.toNanos();
    }
    if (end != null) {
      if (!(end > 0)) {
        throw new ParameterException(cl, p + "end must be positive, got " + Report.number(end));
      }
      if (end.equals(start)) {
        throw new ParameterException(cl, p + "end equals " + p + "start: that is a constant "
            + what + "; use the const schedule");
      }
      if (step > 0 && end < start) {
        throw new ParameterException(cl, p + "end (" + Report.number(end) + ") is below "
            + p + "start (" + Report.number(start) + ") but " + p + "step is positive");
      }
      if (step < 0 && end > start) {
        throw new ParameterException(cl, p + "end (" + Report.number(end) + ") is above "
            + p + "start (" + Report.number(start) + ") but " + p + "step is negative");
      }
    }
    long maxNanos = 0;
    if (maxDuration != null) {
      if (maxDuration.isNegative() || maxDuration.isZero()) {
        throw new ParameterException(cl, p + "max-duration must be positive");
      }
      maxNanos = maxDuration.toNanos();
    }
    Schedule s = new Schedule(kind, start, step, stepNanos, end, maxNanos);
    if (step < 0 && (s.lastStep() == Schedule.NEVER || !(s.valueOfStep(s.lastStep()) > 0))) {
      throw new ParameterException(cl, "a falling " + what + " schedule would reach 0: give "
          + p + "end (> 0) or a " + p + "max-duration that stops it earlier");
    }
    return s;
  }
}
