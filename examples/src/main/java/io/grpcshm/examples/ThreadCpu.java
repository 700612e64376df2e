package io.grpcshm.examples;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * CPU time per thread of any local process, from /proc (Linux). Shows which threads burn CPU,
 * e.g. readers that spin while a connection is idle. Clock-tick resolution (usually 10 ms).
 */
final class ThreadCpu {
  record Sample(String name, long millis) {}

  private ThreadCpu() {}

  /** The {@code limit} busiest threads of process {@code pid}; empty if /proc is unreadable. */
  static List<Sample> busiest(long pid, int limit) {
    List<Sample> samples = new ArrayList<>();
    try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path task : tasks.toList()) {
        Sample s = read(task);
        if (s != null) {
          samples.add(s);
        }
      }
    } catch (IOException | RuntimeException e) {
      return List.of();
    }
    samples.sort(Comparator.comparingLong(Sample::millis).reversed());
    return samples.subList(0, Math.min(limit, samples.size()));
  }

  static String describe(long pid, int limit) {
    StringBuilder out = new StringBuilder();
    for (Sample s : busiest(pid, limit)) {
      out.append(out.isEmpty() ? "" : ", ").append(s.name()).append(' ').append(s.millis())
          .append(" ms");
    }
    return out.toString();
  }

  /** The {@code limit} threads that used the most CPU since {@code before}, e.g. "loop 30 ms". */
  static String busiestSince(long pid, java.util.Map<String, Counters> before, int limit) {
    List<Sample> deltas = new ArrayList<>();
    counters(pid).forEach((tid, now) -> {
      Counters then = earlier(before, tid, now);
      long ms = now.millis() - (then == null ? 0 : then.millis());
      if (ms > 0) {
        deltas.add(new Sample(now.name(), ms));
      }
    });
    deltas.sort(Comparator.comparingLong(Sample::millis).reversed());
    StringBuilder out = new StringBuilder();
    for (Sample s : deltas.subList(0, Math.min(limit, deltas.size()))) {
      out.append(out.isEmpty() ? "" : ", ").append(s.name()).append(' ').append(s.millis())
          .append(" ms");
    }
    return out.isEmpty() ? "none" : out.toString();
  }

  /** One thread's counters at one moment: CPU (ms) and context switches (voluntary + not). */
  record Counters(String name, long millis, long switches) {
    boolean compiler() {
      return name.contains("CompilerThre");
    }
  }

  /** What a process's threads did between two {@link #counters} readings. */
  record Activity(long switches, long compilerMillis) {}

  /**
   * Every thread's counters of process {@code pid} now, keyed by thread id, for {@link #since}
   * and {@link #busiestSince}; empty if unreadable.
   */
  static java.util.Map<String, Counters> counters(long pid) {
    java.util.Map<String, Counters> out = new java.util.HashMap<>();
    try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path task : tasks.toList()) {
        Sample s = read(task);
        long switches = switches(task);
        if (s != null && switches >= 0) {
          out.put(task.getFileName().toString(), new Counters(s.name(), s.millis(), switches));
        }
      }
    } catch (IOException | RuntimeException e) {
      // process gone: empty
    }
    return out;
  }

  /**
   * What the threads of {@code pid} alive now did since {@code before}, thread by thread: a
   * thread started meanwhile counts from zero, one that ended meanwhile is left out, so read this
   * before the threads being measured end. (A process total, new minus old, subtracts the whole
   * life of every thread that ended in between: the JVM retires idle compiler threads, grpc's
   * pool its idle workers.)
   */
  static Activity since(long pid, java.util.Map<String, Counters> before) {
    long switches = 0;
    long compiler = 0;
    for (var e : counters(pid).entrySet()) {
      Counters now = e.getValue();
      Counters then = earlier(before, e.getKey(), now);
      switches += now.switches() - (then == null ? 0 : then.switches());
      if (now.compiler()) {
        compiler += now.millis() - (then == null ? 0 : then.millis());
      }
    }
    return new Activity(switches, compiler);
  }

  /** Thread {@code tid}'s counters in {@code before}, or null if it started since. */
  private static Counters earlier(java.util.Map<String, Counters> before, String tid,
      Counters now) {
    Counters then = before.get(tid);
    return then != null && then.name().equals(now.name()) ? then : null; // else a reused id
  }

  private static long switches(Path task) {
    try {
      long total = 0;
      for (String l : Files.readAllLines(task.resolve("status"))) {
        if (l.startsWith("voluntary_ctxt_switches:")
            || l.startsWith("nonvoluntary_ctxt_switches:")) {
          total += Long.parseLong(l.substring(l.indexOf(':') + 1).trim());
        }
      }
      return total;
    } catch (IOException | RuntimeException e) {
      return -1; // the thread ended meanwhile
    }
  }

  /** Collections this JVM has run so far, all collectors together. */
  static long gcEvents() {
    long n = 0;
    for (java.lang.management.GarbageCollectorMXBean gc
        : java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()) {
      n += Math.max(0, gc.getCollectionCount());
    }
    return n;
  }

  /** Minor page faults of process {@code pid} so far (first touches of fresh memory), or 0. */
  static long minorFaults(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[7]);
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  private static Sample read(Path task) {
    try {
      String stat = Files.readString(task.resolve("stat"));
      // Fields after the ")" that closes the thread name: state is field 3, utime 14, stime 15.
      String name = stat.substring(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
      return new Sample(name, ticks * 10); // USER_HZ is 100 on Linux x86-64
    } catch (IOException | RuntimeException e) {
      return null; // the thread ended meanwhile
    }
  }
}
