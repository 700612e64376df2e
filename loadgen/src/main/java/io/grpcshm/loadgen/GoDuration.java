package io.grpcshm.loadgen;

import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;

/** Go-style durations as ghz takes them: 10s, 500ms, 1m30s, 250us, 1.5s; a bare number is seconds. */
final class GoDuration implements CommandLine.ITypeConverter<Duration> {
  private static final Pattern PART = Pattern.compile("(\\d+(?:\\.\\d+)?)(ns|us|µs|ms|s|m|h)");

  @Override
  public Duration convert(String value) {
    return parse(value);
  }

  static Duration parse(String value) {
    String v = value.trim();
    if (v.matches("\\d+(\\.\\d+)?")) {
      return Duration.ofNanos((long) (Double.parseDouble(v) * 1e9));
    }
    Matcher m = PART.matcher(v);
    int pos = 0;
    double nanos = 0;
    while (pos < v.length() && m.find(pos) && m.start() == pos) {
      double n = Double.parseDouble(m.group(1));
      nanos += n * switch (m.group(2)) {
        case "ns" -> 1;
        case "us", "µs" -> 1e3;
        case "ms" -> 1e6;
        case "s" -> 1e9;
        case "m" -> 60e9;
        default -> 3600e9;
      };
      pos = m.end();
    }
    if (pos != v.length() || v.isEmpty()) {
      throw new CommandLine.TypeConversionException("'" + value
          + "' is not a duration (examples: 10s, 500ms, 1m30s, 250us)");
    }
    return Duration.ofNanos((long) nanos);
  }
}
