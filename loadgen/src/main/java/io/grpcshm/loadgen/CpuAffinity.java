package io.grpcshm.loadgen;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code --cpus N}: the process runs on N of the CPUs it may use, as {@code taskset} would do.
 * Linux keeps an affinity per thread, so every thread the JVM has is restricted (from
 * {@code /proc/self/task}), and threads started later inherit their creator's.
 */
final class CpuAffinity {
  /** Room for 1024 CPUs (glibc's cpu_set_t). */
  private static final int MASK_BYTES = 128;
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle GET = LINKER.downcallHandle(
      LINKER.defaultLookup().findOrThrow("sched_getaffinity"), FunctionDescriptor.of(
          ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
  private static final MethodHandle SET = LINKER.downcallHandle(
      LINKER.defaultLookup().findOrThrow("sched_setaffinity"), FunctionDescriptor.of(
          ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));

  private static List<Integer> allowedAtStart;

  private CpuAffinity() {}

  /** The CPUs the calling thread may run on. */
  static List<Integer> current() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment mask = arena.allocate(MASK_BYTES);
      int rc = (int) GET.invokeExact(0, (long) MASK_BYTES, mask);
      if (rc != 0) {
        throw new IllegalStateException("sched_getaffinity failed");
      }
      List<Integer> cpus = new ArrayList<>();
      for (int cpu = 0; cpu < MASK_BYTES * 8; cpu++) {
        if ((mask.get(ValueLayout.JAVA_BYTE, cpu / 8) & (1 << (cpu % 8))) != 0) {
          cpus.add(cpu);
        }
      }
      return cpus;
    } catch (RuntimeException | Error e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException(t);
    }
  }

  /** The CPUs this process could use before any {@link #restrictProcess}. */
  static synchronized List<Integer> allowed() {
    if (allowedAtStart == null) {
      allowedAtStart = current();
    }
    return allowedAtStart;
  }

  /** Restricts every thread of this process to the first {@code n} allowed CPUs. */
  static synchronized void restrictProcess(int n) throws IOException {
    List<Integer> cpus = allowed().subList(0, n);
    try (Arena arena = Arena.ofConfined();
        DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
      MemorySegment mask = arena.allocate(MASK_BYTES);
      for (int cpu : cpus) {
        int i = cpu / 8;
        mask.set(ValueLayout.JAVA_BYTE, i,
            (byte) (mask.get(ValueLayout.JAVA_BYTE, i) | (1 << (cpu % 8))));
      }
      for (Path task : tasks) {
        int tid = Integer.parseInt(task.getFileName().toString());
        int rc = (int) SET.invokeExact(tid, (long) MASK_BYTES, mask);
        if (rc != 0 && Files.exists(task)) { // a thread that just ended cannot be set
          throw new IOException("sched_setaffinity failed for thread " + tid);
        }
      }
    } catch (IOException | RuntimeException | Error e) {
      throw e;
    } catch (Throwable t) {
      throw new IllegalStateException(t);
    }
  }
}
