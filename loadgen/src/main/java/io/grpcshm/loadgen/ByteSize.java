package io.grpcshm.loadgen;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;

/**
 * A message size as ghz accepts it: bytes ({@code 4194304}) or a human-readable value
 * ({@code 42 MB}, {@code 4MiB}, {@code 512kb}). As in ghz (go-humanize), KB/MB/GB are powers of
 * 1000 and KiB/MiB/GiB powers of 1024. grpc's limits are ints, so at most 2 GiB - 1.
 */
final class ByteSize implements CommandLine.ITypeConverter<Integer> {
  private static final Pattern SIZE =
      Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*([kmg]i?b?|b)?", Pattern.CASE_INSENSITIVE);

  @Override
  public Integer convert(String value) {
    return parse(value);
  }

  static int parse(String value) {
    Matcher m = SIZE.matcher(value.trim());
    if (!m.matches()) {
      throw new CommandLine.TypeConversionException("not a size: '" + value
          + "' (bytes, or e.g. 42 MB, 4MiB)");
    }
    double n = Double.parseDouble(m.group(1));
    String unit = m.group(2) == null ? "" : m.group(2).toLowerCase(Locale.ROOT);
    double scale = switch (unit.isEmpty() || unit.equals("b") ? "" : unit.substring(0, 1)) {
      case "k" -> unit.contains("i") ? 1L << 10 : 1e3;
      case "m" -> unit.contains("i") ? 1L << 20 : 1e6;
      case "g" -> unit.contains("i") ? 1L << 30 : 1e9;
      default -> 1;
    };
    double bytes = n * scale;
    if (bytes < 1 || bytes > Integer.MAX_VALUE) {
      throw new CommandLine.TypeConversionException("size out of range (1 B to 2 GiB - 1): '"
          + value + "'");
    }
    return (int) bytes;
  }
}
