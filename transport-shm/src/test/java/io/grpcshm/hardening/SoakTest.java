package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.io.BufferedReader;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.management.ObjectName;
import jdk.jfr.consumer.RecordingStream;
import org.junit.jupiter.api.Test;

/**
 * 16 clients (one connection each) run mixed checksummed calls of all four types with payloads
 * of 0 B .. 32 MiB for {@code -Dgrpcshm.soakSeconds} (CI: 60 s; the documented long run: 600):
 * no message lost, corrupted, duplicated or reordered; heap and RSS do not grow. With
 * {@code -Dgrpcshm.soakHostile=true} a hostile peer attacks the same server all along
 * ({@link SoakAttacker}): the honest calls must not notice, and every attack must be repelled.
 */
class SoakTest {
  static final int SECONDS = Integer.getInteger("grpcshm.soakSeconds", 60);
  static final int CLIENTS = Integer.getInteger("grpcshm.soakClients", 16);
  /** Runs hostile peers against the same server throughout (SoakAttacker). */
  static final boolean HOSTILE = Boolean.getBoolean("grpcshm.soakHostile");
  /** At most two payloads above 8 MiB in flight, so 16 clients fit the test heap. */
  static final Semaphore HUGE = new Semaphore(2);
  /** An smaps line that starts a mapping: "start-end perms ...". */
  private static final Pattern MAPPING = Pattern.compile("[0-9a-f]+-[0-9a-f]+ ");

  final AtomicLong calls = new AtomicLong();
  final AtomicLong messages = new AtomicLong();
  final AtomicLong bytes = new AtomicLong();
  final long[] perType = new long[4];
  final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();

  static int size() {
    ThreadLocalRandom r = ThreadLocalRandom.current();
    int p = r.nextInt(100);
    if (p < 40) {
      return r.nextInt(1024);
    } else if (p < 70) {
      return r.nextInt(1024, 64 << 10);
    } else if (p < 90) {
      return r.nextInt(64 << 10, 1 << 20);
    } else if (p < 98) {
      return r.nextInt(1 << 20, 8 << 20);
    }
    return r.nextInt(8 << 20, (32 << 20) - Hardening.HEADER);
  }

  /** A line of /proc/self/status in KiB: VmRSS, RssAnon (heap, stacks, native), RssShmem. */
  static long statusKib(String field) throws Exception {
    for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (l.startsWith(field + ":")) {
        return Long.parseLong(l.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }

  /**
   * The Java heap's reserved addresses [start, end), from the GC.heap_info diagnostic command:
   * the lowest and highest address it prints in brackets (G1 prints one range, the serial and
   * parallel collectors one per generation). Empty if it prints none: then every mapping counts.
   */
  static long[] heapRange() throws Exception {
    String info = (String) ManagementFactory.getPlatformMBeanServer().invoke(
        new ObjectName("com.sun.management:type=DiagnosticCommand"), "gcHeapInfo",
        new Object[] {null}, new String[] {String[].class.getName()});
    long low = Long.MAX_VALUE;
    long high = 0;
    Matcher brackets = Pattern.compile("\\[(0x[0-9a-f]+(?:, 0x[0-9a-f]+)*)\\)").matcher(info);
    while (brackets.find()) {
      for (String address : brackets.group(1).split(", ")) {
        long a = Long.parseUnsignedLong(address.substring(2), 16);
        low = Math.min(low, a);
        high = Math.max(high, a);
      }
    }
    return low < high ? new long[] {low, high} : new long[] {0, 0};
  }

  /** Private anonymous memory of the mappings that start outside {@code range}, in KiB. */
  static long anonymousOutsideKib(long[] range) throws Exception {
    long kib = 0;
    boolean inside = false;
    try (BufferedReader r = Files.newBufferedReader(Path.of("/proc/self/smaps"))) {
      for (String l; (l = r.readLine()) != null; ) {
        if (l.startsWith("Anonymous:")) {
          if (!inside) {
            kib += Long.parseLong(l.replaceAll("[^0-9]", ""));
          }
        } else if (MAPPING.matcher(l).lookingAt()) {
          long start = Long.parseUnsignedLong(l, 0, l.indexOf('-'), 16);
          inside = start >= range[0] && start < range[1];
        }
      }
    }
    return kib;
  }

  static long heapAfterGc() {
    System.gc();
    Runtime rt = Runtime.getRuntime();
    return rt.totalMemory() - rt.freeMemory();
  }

  /** Sends {@code requests}, half-closes, collects every response; fails on a bad status. */
  static List<byte[]> exchange(ManagedChannel ch, MethodDescriptor<byte[], byte[]> m,
      List<byte[]> requests) throws InterruptedException {
    ClientCall<byte[], byte[]> call = ch.newCall(m,
        CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS));
    List<byte[]> out = new ArrayList<>();
    CountDownLatch done = new CountDownLatch(1);
    AtomicReference<Status> status = new AtomicReference<>();
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onMessage(byte[] message) {
        synchronized (out) {
          out.add(message);
        }
        call.request(1);
      }

      @Override
      public void onClose(Status s, Metadata trailers) {
        status.set(s);
        done.countDown();
      }
    }, new Metadata());
    call.request(1);
    Iterator<byte[]> it = requests.iterator();
    while (it.hasNext()) {
      call.sendMessage(it.next());
    }
    call.halfClose();
    if (!done.await(90, TimeUnit.SECONDS)) {
      throw new IllegalStateException(m.getBareMethodName() + " did not finish");
    }
    if (!status.get().isOk()) {
      throw new IllegalStateException(m.getBareMethodName() + ": " + status.get());
    }
    synchronized (out) {
      return new ArrayList<>(out);
    }
  }

  void oneCall(ManagedChannel ch, int type) throws Exception {
    int size = size();
    boolean huge = size > (8 << 20);
    if (huge) {
      HUGE.acquire();
    }
    try {
      int count = huge || size > (1 << 20) ? 1 + ThreadLocalRandom.current().nextInt(2)
          : 1 + ThreadLocalRandom.current().nextInt(8);
      switch (type) {
        case 0 -> {
          byte[] req = Hardening.message(7, size);
          byte[] resp = ClientCalls.blockingUnaryCall(ch, Hardening.UNARY,
              CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS), req);
          Hardening.verify(resp);
          check(Arrays.equals(req, resp), "unary echo differs");
          count = 1;
        }
        case 1 -> {
          List<byte[]> got = exchange(ch, Hardening.SERVER_STREAM,
              List.of(Hardening.streamRequest(count, size)));
          check(got.size() == count, "server stream: " + got.size() + " of " + count);
          for (int i = 0; i < got.size(); i++) {
            check(Hardening.verify(got.get(i)) == i, "server stream out of order at " + i);
            check(got.get(i).length == size + Hardening.HEADER, "server stream size");
          }
        }
        case 2 -> {
          List<byte[]> reqs = new ArrayList<>();
          byte[] m = Hardening.message(0, size);
          long total = 0;
          for (int i = 0; i < count; i++) {
            reqs.add(Hardening.seal(i, m.clone()));
            total += m.length;
          }
          List<byte[]> got = exchange(ch, Hardening.CLIENT_STREAM, reqs);
          check(got.size() == 1, "client stream answers once");
          ByteBuffer p = Hardening.payload(got.get(0));
          Hardening.verify(got.get(0));
          check(p.getLong() == count && p.getLong() == total, "client stream digest");
        }
        default -> {
          List<byte[]> reqs = new ArrayList<>();
          for (int i = 0; i < count; i++) {
            reqs.add(Hardening.message(i, size));
          }
          List<byte[]> got = exchange(ch, Hardening.BIDI, reqs);
          check(got.size() == count, "bidi: " + got.size() + " of " + count);
          for (int i = 0; i < count; i++) {
            check(Arrays.equals(reqs.get(i), got.get(i)), "bidi echo " + i + " differs");
          }
        }
      }
      calls.incrementAndGet();
      messages.addAndGet(2L * count);
      bytes.addAndGet(2L * count * size);
      synchronized (perType) {
        perType[type]++;
      }
    } finally {
      if (huge) {
        HUGE.release();
      }
    }
  }

  static void check(boolean ok, String what) {
    if (!ok) {
      throw new IllegalStateException(what);
    }
  }

  /**
   * Who calls {@code Thread.interrupt} while the soak runs (JFR method tracing), minus thread
   * pools interrupting their own workers. CI once saw this test's thread interrupted during
   * teardown; three traced runs of the whole suite showed no interrupt from grpc-shm code. If it
   * happens again, the log names the caller.
   */
  static RecordingStream traceInterrupts(ConcurrentLinkedQueue<String> callers) {
    RecordingStream rs = new RecordingStream();
    rs.enable("jdk.MethodTrace").with("filter", "java.lang.Thread::interrupt").withStackTrace();
    rs.onEvent("jdk.MethodTrace", e -> {
      String stack = e.getStackTrace() == null ? "?" : e.getStackTrace().getFrames().stream()
          .limit(12).map(f -> f.getMethod().getType().getName() + "." + f.getMethod().getName())
          .reduce((a, b) -> a + " <- " + b).orElse("?");
      if (!stack.contains("ThreadPoolExecutor") && !stack.contains("AbstractQueuedSynchronizer")) {
        callers.add(e.getThread().getJavaName() + ": " + stack);
      }
    });
    rs.startAsync();
    return rs;
  }

  /** Teardown that cannot be cut short by an interrupt of the test thread (it is reported). */
  static void awaitQuietly(ManagedChannel ch, List<String> interrupted) {
    try {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      interrupted.add("channel teardown");
    }
  }

  @Test
  void mixedChecksummedTrafficLosesNothingAndStaysBounded() throws Exception {
    ConcurrentLinkedQueue<String> interrupters = new ConcurrentLinkedQueue<>();
    RecordingStream interruptTrace = traceInterrupts(interrupters);
    Hardening.Stats stats = new Hardening.Stats();
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .addService(Hardening.service(stats)).build().start();
    List<ManagedChannel> channels = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
    java.util.concurrent.atomic.AtomicBoolean stopAttacks =
        new java.util.concurrent.atomic.AtomicBoolean();
    SoakAttacker attacker = null;
    Thread attackerThread = null;
    try {
      for (int i = 0; i < CLIENTS; i++) {
        ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", server.getPort())
            .usePlaintext().maxInboundMessageSize(64 << 20)
            .transportMode(TransportMode.SHM_ONLY).build();
        Calls.echo(ch, 10);
        channels.add(ch);
      }
      long start = System.nanoTime();
      long end = start + TimeUnit.SECONDS.toNanos(SECONDS);
      List<Future<?>> workers = new ArrayList<>();
      if (HOSTILE) {
        attackerThread = new Thread(attacker = new SoakAttacker(server.getPort(), stopAttacks),
            "soak-attacker");
        attackerThread.start();
      }
      for (ManagedChannel ch : channels) {
        workers.add(pool.submit(() -> {
          while (System.nanoTime() < end && failures.size() < 10) {
            try {
              oneCall(ch, ThreadLocalRandom.current().nextInt(4));
            } catch (Exception | AssertionError e) {
              failures.add(e.toString());
            }
          }
          return null;
        }));
      }
      // Sample private memory outside the Java heap (a native leak shows there) and compare the
      // last third of the run with the first two thirds; the heap is checked after collections
      // below. Private RSS itself includes every heap page G1 has touched, which on a 2 GiB heap
      // swung by 0.6 GiB between runs with no leak (heap after GC ~20 MiB), so the heap's
      // mappings are left out (smaps; the heap's committed size instead swung as much, being
      // partly untouched). Shared memory is bounded by
      // configuration instead: the pools and segments of each connection fill up to their
      // high-water mark, mapped twice in this process (both ends), which is growth but not a leak.
      long warmRss = 0;
      long lateRss = 0;
      long maxShmem = 0;
      long maxPrivate = 0;
      long[] heap = heapRange();
      long maxTotal = 0;
      long heapWarm = -1;
      while (System.nanoTime() < end) {
        Thread.sleep(1000);
        long rss = anonymousOutsideKib(heap);
        maxPrivate = Math.max(maxPrivate, statusKib("RssAnon"));
        maxShmem = Math.max(maxShmem, statusKib("RssShmem"));
        maxTotal = Math.max(maxTotal, statusKib("VmRSS"));
        double elapsed = (System.nanoTime() - start) / (double) (end - start);
        if (elapsed < 2.0 / 3) {
          warmRss = Math.max(warmRss, rss);
        } else {
          lateRss = Math.max(lateRss, rss);
        }
        if (heapWarm < 0 && elapsed > 0.2) {
          heapWarm = heapAfterGc();
        }
      }
      for (Future<?> w : workers) {
        w.get(120, TimeUnit.SECONDS);
      }
      String attacks = "";
      if (attacker != null) {
        stopAttacks.set(true);
        attackerThread.join(TimeUnit.SECONDS.toMillis(120));
        attacks = "; " + attacker.summary();
      }
      long heapEnd = heapAfterGc();
      String report = String.format(
          "SOAK %d clients x %d s: %d calls (unary %d, server-stream %d, client-stream %d, bidi"
              + " %d), %d messages, %.1f GiB; failures %d; server corrupt %d; private RSS outside"
              + " the heap max %d MiB (first 2/3) / %d MiB (last 1/3); private RSS max %d MiB;"
              + " shared RSS max %d MiB; total RSS max %d MiB; heap after GC %d MiB at 20%% -> %d"
              + " MiB at end",
          CLIENTS, SECONDS, calls.get(), perType[0], perType[1], perType[2], perType[3],
          messages.get(), bytes.get() / (double) (1L << 30), failures.size(), stats.corrupt.get(),
          warmRss >> 10, lateRss >> 10, maxPrivate >> 10, maxShmem >> 10, maxTotal >> 10,
          heapWarm >> 20,
          heapEnd >> 20) + attacks;
      System.out.println(report);
      Files.writeString(Path.of("target", "soak-report.txt"), report + "\n");
      assertTrue(failures.isEmpty(), "failures: " + failures);
      assertEquals(0, stats.corrupt.get(), "server saw corrupt messages");
      if (attacker != null) {
        assertTrue(!attackerThread.isAlive(), "the attacker stopped");
        assertTrue(attacker.rounds.get() > 0, "attacks ran: " + attacker.summary());
        for (SoakAttacker.Attack a : SoakAttacker.Attack.values()) {
          assertEquals(0, attacker.unexpected[a.ordinal()].get(), attacker.summary());
        }
      }
      assertTrue(calls.get() > CLIENTS, "traffic ran: " + calls);
      // 125-132 MiB in three runs; the slack is for the JIT compiling late on a busy machine.
      assertTrue(lateRss <= warmRss * 5 / 4 + (128 << 10),
          "private RSS outside the heap grew: " + (warmRss >> 10) + " -> " + (lateRss >> 10)
              + " MiB");
      // Per connection and direction at most the pool plus the segments the largest messages
      // in flight needed (a few of up to 32 MiB); each page mapped by both ends: x2.
      long shmemBound = 2L * CLIENTS * 2 * (ShmTransportConfig.DEFAULT_POOL_SIZE + (128L << 20));
      assertTrue(maxShmem << 10 <= shmemBound,
          "shared RSS " + (maxShmem >> 10) + " MiB above " + (shmemBound >> 20) + " MiB");
      assertTrue(heapEnd - heapWarm < 128L << 20,
          "heap grew: " + (heapWarm >> 20) + " -> " + (heapEnd >> 20) + " MiB");
    } finally {
      stopAttacks.set(true);
      if (attackerThread != null) {
        attackerThread.join(TimeUnit.SECONDS.toMillis(120));
      }
      pool.shutdownNow();
      List<String> interrupted = new ArrayList<>();
      for (ManagedChannel ch : channels) {
        awaitQuietly(ch, interrupted);
      }
      try {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        interrupted.add("server teardown");
      }
      interruptTrace.close();
      if (!interrupted.isEmpty()) {
        System.err.println("SoakTest: the test thread was interrupted during " + interrupted
            + "; Thread.interrupt callers during the run: " + interrupters);
      }
    }
  }
}
