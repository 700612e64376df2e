package io.grpcshm.policy.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Page-fault counters of this process from {@code /proc/self/stat} (fields 10 and 12). */
public final class ProcStat {
  private ProcStat() {}

  public static final Path SELF = Path.of("/proc/self/stat");

  /** minflt + majflt of the whole process (all threads), or -1 if unreadable. */
  public static long faults(Path stat) {
    try {
      return parseFaults(Files.readString(stat));
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  /**
   * Parses the stat line. The command name (field 2) may contain spaces and parentheses, so
   * fields are counted from the last ')'.
   */
  public static long parseFaults(String stat) {
    int close = stat.lastIndexOf(')');
    if (close < 0) {
      throw new IllegalArgumentException("no ')' in stat line");
    }
    String[] f = stat.substring(close + 2).trim().split(" +");
    // f[0] is field 3 (state); minflt is field 10 -> f[7]; majflt is field 12 -> f[9].
    return Long.parseLong(f[7]) + Long.parseLong(f[9]);
  }
}
