package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpcshm.LogCapture;
import io.grpcshm.PeerAuthorizationPolicy;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.nativeio.Linux;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A peer that opens many connections and never sends CLIENT_HELLO must not keep authorised clients
 * out. The attacker is a child process ({@link SilentPeersMain}) holding 160 silent connections and
 * reconnecting each one the server closes; meanwhile an authorised client of this process makes
 * calls on fresh connections, each of which must complete promptly.
 *
 * <p>Why the policy runs at accept: were it checked only after CLIENT_HELLO, on one of the
 * server's 32 handshake slots, the silent connections would hold every slot for the handshake
 * timeout and block the acceptor; later clients would wait behind them in the backlog (or find it
 * full) and fail with UNAVAILABLE.
 */
class AcceptAdmissionTest {
  private static final int NOBODY = 65534;
  private static final int SILENT = 160;
  private static final int PERMISSION_DENIED = Status.Code.PERMISSION_DENIED.value();
  private static final int RESOURCE_EXHAUSTED = Status.Code.RESOURCE_EXHAUSTED.value();
  /** Held strongly: java.util.logging keeps only weak references to loggers. */
  private static final Logger SERVER_LOG =
      Logger.getLogger("io.grpcshm.internal.transport.ShmInternalServer");
  private static Path sandbox;

  private final LogCapture capture = new LogCapture();

  @BeforeEach
  void captureLog() {
    SERVER_LOG.addHandler(capture);
  }

  @AfterEach
  void releaseLog() {
    SERVER_LOG.removeHandler(capture);
  }

  @AfterAll
  static void removeSandbox() throws IOException {
    if (sandbox != null) {
      try (Stream<Path> walk = Files.walk(sandbox)) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  private static boolean canRunAsNobody() {
    return Linux.getuid() == 0 && Files.isExecutable(Path.of("/usr/bin/setpriv"));
  }

  /** A copy of SilentPeersMain.class that uid 65534 can read (it is JDK-only, one file). */
  private static synchronized Path sandbox() throws Exception {
    if (sandbox == null) {
      Path dir = Files.createTempDirectory("grpcshm-silent-");
      Path pkg = dir.resolve("io/grpcshm/hardening");
      Files.createDirectories(pkg);
      Files.copy(Path.of(SilentPeersMain.class.getResource("SilentPeersMain.class").toURI()),
          pkg.resolve("SilentPeersMain.class"));
      try (Stream<Path> walk = Files.walk(dir)) {
        for (Path p : (Iterable<Path>) walk::iterator) {
          Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(
              Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
        }
      }
      sandbox = dir;
    }
    return sandbox;
  }

  /** The attacker process; killed on close whatever happened. */
  private static final class Silent implements AutoCloseable {
    final Process process;
    final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

    Silent(Process process) {
      this.process = process;
      Thread reader = new Thread(() -> {
        try (BufferedReader r = new BufferedReader(
            new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = r.readLine()) != null) {
            lines.add(line);
          }
        } catch (IOException ignored) {
          // killed
        }
        lines.add("");
      }, "silent-peers-stdout");
      reader.setDaemon(true);
      reader.start();
    }

    static Silent start(String rendezvous, boolean asNobody) throws Exception {
      String java = ProcessHandle.current().info().command().orElse("java");
      List<String> cmd = new ArrayList<>();
      if (asNobody) {
        cmd.addAll(List.of("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY,
            "--clear-groups"));
      }
      cmd.addAll(List.of(java, "-XX:-UsePerfData", "-Xmx64m", "-XX:TieredStopAtLevel=1",
          "--enable-native-access=ALL-UNNAMED", "-Djava.io.tmpdir=" + sandbox(),
          "-cp", sandbox().toString(), SilentPeersMain.class.getName(), rendezvous,
          Integer.toString(SILENT), "120"));
      return new Silent(new ProcessBuilder(cmd).directory(sandbox().toFile())
          .redirectError(ProcessBuilder.Redirect.INHERIT).start());
    }

    long pid() {
      return process.pid();
    }

    /** Lets it connect; returns how many connections it opened. */
    int go() throws Exception {
      OutputStream in = process.getOutputStream();
      in.write('\n');
      in.flush();
      String line = lines.poll(60, TimeUnit.SECONDS);
      assertTrue(line != null && line.startsWith("OPEN "), "attacker connected: " + line);
      return Integer.parseInt(line.substring(5).trim());
    }

    /** Stops it; returns its REJECT counts by status code (and its CONNECTS and EOF counts). */
    Map<String, Long> finish() throws Exception {
      process.getOutputStream().close();
      Map<String, Long> rejects = new TreeMap<>();
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (System.nanoTime() < until) {
        String line = lines.poll(1, TimeUnit.SECONDS);
        if (line == null) {
          continue;
        }
        if (line.equals("DONE") || line.isEmpty()) {
          break;
        }
        String[] f = line.split(" ");
        if (f[0].equals("REJECT")) {
          rejects.put(f[1], Long.parseLong(f[2]));
        } else if (f.length == 2) {
          rejects.put(f[0], Long.parseLong(f[1]));
        }
      }
      assertTrue(process.waitFor(30, TimeUnit.SECONDS), "attacker exits");
      return rejects;
    }

    @Override
    public void close() throws InterruptedException {
      if (process.isAlive()) {
        process.destroyForcibly();
      }
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }

  /**
   * Calls on fresh connections (a new channel each: a new connection and handshake each time)
   * for 2 s of the attack (the attacker reconnects every 100 ms); every one must succeed.
   * Returns the slowest, in ms.
   */
  private static long authorisedCallsSucceed(int port) {
    long slowest = 0;
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    for (int i = 0; i < 5 || System.nanoTime() < until; i++) {
      ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
          .transportMode(TransportMode.SHM_ONLY).build();
      long t0 = System.nanoTime();
      try {
        Calls.echo(ch, 1000 + i);
      } catch (StatusRuntimeException e) {
        throw new AssertionError("authorised call " + i + " failed after "
            + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms: " + e.getStatus(), e);
      } finally {
        ch.shutdownNow();
        try {
          ch.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      slowest = Math.max(slowest, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    }
    return slowest;
  }

  /** One log line per kind of breach, never a stack trace. */
  private void assertQuietLog() {
    List<LogRecord> warnings = capture.records().stream()
        .filter(r -> r.getLevel().intValue() >= Level.WARNING.intValue()).toList();
    for (LogRecord r : capture.records()) {
      assertEquals(null, r.getThrown(), "no stack trace in the server log: " + r.getMessage());
    }
    assertTrue(warnings.size() <= 3, "at most one line per kind of breach, got "
        + warnings.stream().map(LogRecord::getMessage).toList());
  }

  private void attack(Server server, boolean asNobody, AtomicLong refusedPid,
      int expectedCode) throws Exception {
    Calls.echo(warmChannel(server.getPort()), 10); // warm: classes loaded, server serving
    String rendezvous = ShmAddress.defaultRendezvous(server.getPort());
    try (Silent silent = Silent.start(rendezvous, asNobody)) {
      if (refusedPid != null) {
        refusedPid.set(silent.pid());
      }
      int open = silent.go();
      assertTrue(open >= SILENT / 2, "the attacker opened " + open + " connections");
      long slowest = authorisedCallsSucceed(server.getPort());
      Map<String, Long> seen = silent.finish();
      assertNotNull(seen.get(Integer.toString(expectedCode)),
          "the silent peer read SERVER_REJECT(" + expectedCode + ") without sending a hello: "
              + seen);
      assertEquals(Set.of("CONNECTS", "EOF", Integer.toString(expectedCode)), seen.keySet(),
          "only the expected refusal: " + seen);
      assertTrue(seen.get("CONNECTS") > open && seen.get("EOF") > 0,
          "the server closed refused connections and the attacker kept reconnecting: " + seen);
      assertTrue(slowest < 10_000, "slowest authorised call " + slowest + " ms");
    }
    assertQuietLog();
  }

  private static final List<ManagedChannel> WARM = new CopyOnWriteArrayList<>();

  private static ManagedChannel warmChannel(int port) {
    ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
    WARM.add(ch);
    return ch;
  }

  @AfterEach
  void closeWarmChannels() throws InterruptedException {
    for (ManagedChannel ch : WARM) {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    WARM.clear();
  }

  /** Runs everywhere: the policy refuses the attacker's pid (same uid as us). */
  @Test
  void silentConnectionsOfARefusedPeerDoNotLockOutAuthorisedClients() throws Exception {
    AtomicLong refusedPid = new AtomicLong(-1);
    Server server = ShmServerBuilder.forPort(0)
        .clientAuthorizationPolicy((pid, uid, gid) -> pid == refusedPid.get()
            ? Status.PERMISSION_DENIED.withDescription("pid " + pid + " is the attacker")
            : Status.OK)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    try {
      attack(server, false, refusedPid, PERMISSION_DENIED);
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** The attacker runs as uid 65534, which the default policy (same uid only) refuses. */
  @Test
  void silentConnectionsOfAnotherUidDoNotLockOutAuthorisedClients() throws Exception {
    Assumptions.assumeTrue(canRunAsNobody(), "needs root and setpriv to run as uid 65534");
    Server server = ShmServerBuilder.forPort(0)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    try {
      attack(server, true, null, PERMISSION_DENIED);
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * Both uids are authorised; uid 65534 holds silent connections. It gets a few handshake slots
   * and a bounded queue, the rest of its connections are refused with RESOURCE_EXHAUSTED, and
   * our uid still finds free slots.
   */
  @Test
  void authorisedUidHoldingSilentConnectionsLeavesSlotsForOtherUids() throws Exception {
    Assumptions.assumeTrue(canRunAsNobody(), "needs root and setpriv to run as uid 65534");
    Server server = ShmServerBuilder.forPort(0)
        .clientAuthorizationPolicy(PeerAuthorizationPolicy.uids(Linux.getuid(), NOBODY))
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    try {
      attack(server, true, null, RESOURCE_EXHAUSTED);
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
