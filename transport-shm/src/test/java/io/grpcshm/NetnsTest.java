package io.grpcshm;

import io.grpcshm.childjvm.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Containers on one node. Three network namespaces made by the test (A, B, C; veth pairs A-B and
 * C-B in 10.213.7.0/29, a range that exists only inside them): servers in A (10.213.7.1) and C
 * (10.213.7.5) on the same port, the client in B. Through the node-local rendezvous directory the
 * client reaches each over shared memory, the right one each time; without the directory it uses
 * TCP; a server killed with SIGKILL fails the client's call at once and leaves a stale file that is
 * ignored, then replaced by a successor.
 *
 * <p>Needs Linux, root and {@code ip} (iproute2) with network namespaces: skipped otherwise.
 */
class NetnsTest {
  private static final String A_IP = "10.213.7.1";
  private static final String B_TO_A_IP = "10.213.7.2";
  private static final String C_IP = "10.213.7.5";
  private static final String B_TO_C_IP = "10.213.7.6";

  private final String suffix = Long.toString(ProcessHandle.current().pid());
  private final String nsA = "gshm-a-" + suffix;
  private final String nsB = "gshm-b-" + suffix;
  private final String nsC = "gshm-c-" + suffix;

  private static String run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out;
    if (!p.waitFor(20, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException("timed out: " + String.join(" ", command));
    }
    out = new String(p.getInputStream().readAllBytes()).trim();
    if (p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " failed (" + p.exitValue() + "): " + out);
    }
    return out;
  }

  private static String skipReason() {
    if (!System.getProperty("os.name").startsWith("Linux")) {
      return "network namespaces need Linux";
    }
    try {
      if (!run("id", "-u").equals("0")) {
        return "creating network namespaces needs root";
      }
      run("ip", "-V");
    } catch (Exception e) {
      return "iproute2 'ip' is not usable: " + e.getMessage();
    }
    // Namespaces and veth links may still be refused (a container without CAP_SYS_ADMIN, no
    // veth module): probe once, and remove the probe.
    String probe = "gshm-probe-" + ProcessHandle.current().pid();
    try {
      run("ip", "netns", "add", probe);
      run("ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1");
    } catch (Exception e) {
      return "cannot create a network namespace with a veth pair here: " + e.getMessage();
    } finally {
      try {
        run("ip", "netns", "del", probe);
      } catch (Exception ignored) {
        // never created
      }
    }
    return null;
  }

  private List<String> in(String ns) {
    return List.of("ip", "netns", "exec", ns);
  }

  private void setUpNetwork() throws Exception {
    for (String ns : List.of(nsA, nsB, nsC)) {
      run("ip", "netns", "add", ns);
      run("ip", "-n", ns, "link", "set", "lo", "up");
    }
    // veth pairs created inside the namespaces: no name ever appears in the host's namespace.
    run("ip", "-n", nsB, "link", "add", "to-a", "type", "veth", "peer", "name", "to-b",
        "netns", nsA);
    run("ip", "-n", nsB, "link", "add", "to-c", "type", "veth", "peer", "name", "to-b",
        "netns", nsC);
    run("ip", "-n", nsA, "addr", "add", A_IP + "/30", "dev", "to-b");
    run("ip", "-n", nsB, "addr", "add", B_TO_A_IP + "/30", "dev", "to-a");
    run("ip", "-n", nsC, "addr", "add", C_IP + "/30", "dev", "to-b");
    run("ip", "-n", nsB, "addr", "add", B_TO_C_IP + "/30", "dev", "to-c");
    run("ip", "-n", nsA, "link", "set", "to-b", "up");
    run("ip", "-n", nsC, "link", "set", "to-b", "up");
    run("ip", "-n", nsB, "link", "set", "to-a", "up");
    run("ip", "-n", nsB, "link", "set", "to-c", "up");
  }

  private void tearDownNetwork() {
    for (String ns : List.of(nsA, nsB, nsC)) {
      try {
        run("ip", "netns", "del", ns); // its veth ends go with it
      } catch (Exception ignored) {
        // never created
      }
    }
  }

  private ChildJvm server(String ns, String ip, int port, String name, Path dir, boolean shm)
      throws IOException {
    return ChildJvm.start(in(ns), NetnsServerMain.class, "-Xmx256m",
        ip, Integer.toString(port), name, dir == null ? "-" : dir.toString(), shm ? "shm" : "tcp");
  }

  private static String ask(ChildJvm client, String ip, int port, String mode, boolean dir)
      throws Exception {
    client.send("ask " + ip + " " + port + " " + mode + " " + (dir ? "dir" : "nodir") + " 3");
    return client.readLine(60);
  }

  @Test
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  void podsOnOneNodeFindEachOtherThroughTheRendezvousDirectory() throws Exception {
    String skip = skipReason();
    Assumptions.assumeTrue(skip == null, skip);
    Path dir = Files.createTempDirectory("grpc-shm-rdv",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    List<ChildJvm> children = new ArrayList<>();
    try {
      setUpNetwork();
      ChildJvm serverA = server(nsA, A_IP, 0, "a", dir, true);
      children.add(serverA);
      int port = serverA.port();
      // Same port, another address, another namespace; a stale file of C's name (its listener
      // closed, as after a crash) is replaced at C's start.
      io.grpcshm.internal.nativeio.UnixSeqpacketSocket.listen(
          dir.resolve(C_IP + "_" + port + ".sock").toString(), 1).close();
      ChildJvm serverC = server(nsC, C_IP, port, "c", dir, true);
      children.add(serverC);
      Path fileA = dir.resolve(A_IP + "_" + port + ".sock");
      Path fileC = dir.resolve(C_IP + "_" + port + ".sock");
      assertTrue(Files.exists(fileA), "A published its address");
      assertTrue(Files.exists(fileC), "C published its address");
      assertEquals("rw-rw----", PosixFilePermissions.toString(Files.getPosixFilePermissions(fileA)));
      ChildJvm client = ChildJvm.start(in(nsB), NetnsClientMain.class, "-Xmx256m", dir.toString());
      children.add(client);

      // Shared memory across namespaces, to the right server each time.
      assertEquals("ANSWER a SHARED_MEMORY", ask(client, A_IP, port, "SHM_ONLY", true));
      assertEquals("ANSWER c SHARED_MEMORY", ask(client, C_IP, port, "SHM_ONLY", true));
      assertEquals("ANSWER a SHARED_MEMORY", ask(client, A_IP, port, "AUTO", true));
      // Without the directory: TCP through the veth, same servers.
      assertEquals("ANSWER a TCP", ask(client, A_IP, port, "AUTO", false));
      assertEquals("ANSWER c TCP", ask(client, C_IP, port, "AUTO", false));
      String refused = ask(client, A_IP, port, "SHM_ONLY", false);
      assertTrue(refused.startsWith("ERROR UNAVAILABLE"), refused);

      // SIGKILL of A during a call over shared memory: UNAVAILABLE within a second.
      client.send("hang " + A_IP + " " + port);
      assertEquals("STARTED a SHARED_MEMORY", client.readLine(60));
      long killedAt = System.nanoTime();
      serverA.kill();
      client.send("killed");
      String failed = client.readLine(60);
      long total = (System.nanoTime() - killedAt) / 1_000_000;
      assertTrue(failed.startsWith("FAILED UNAVAILABLE "), failed);
      long ms = Long.parseLong(failed.substring("FAILED UNAVAILABLE ".length()));
      assertTrue(ms < 1000, "UNAVAILABLE after " + ms + " ms");
      // From SIGKILL to the client's report (reaping the server and a pipe round trip included).
      assertTrue(total < 1000, "UNAVAILABLE reported " + total + " ms after SIGKILL");
      System.out.println("NetnsTest: SIGKILL of the server -> UNAVAILABLE, " + ms
          + " ms after the client heard of it, " + total + " ms after the kill as seen by the test");

      // A's file is stale now: ignored. A TCP-only server in its place gets the calls over TCP;
      // C is not confused with it.
      assertTrue(Files.exists(fileA), "SIGKILL leaves the socket file");
      ChildJvm tcpA = server(nsA, A_IP, port, "a-tcp", dir, false);
      children.add(tcpA);
      assertEquals("ANSWER a-tcp TCP", ask(client, A_IP, port, "AUTO", true));
      String stale = ask(client, A_IP, port, "SHM_ONLY", true);
      assertTrue(stale.startsWith("ERROR UNAVAILABLE"), stale);
      assertEquals("ANSWER c SHARED_MEMORY", ask(client, C_IP, port, "SHM_ONLY", true));
      tcpA.close();

      // A successor with shared memory replaces the stale file and is found.
      ChildJvm successor = server(nsA, A_IP, port, "a2", dir, true);
      children.add(successor);
      assertEquals("ANSWER a2 SHARED_MEMORY", ask(client, A_IP, port, "SHM_ONLY", true));
      assertEquals("ANSWER c SHARED_MEMORY", ask(client, C_IP, port, "SHM_ONLY", true));

      // An orderly shutdown removes the server's own file.
      serverC.close();
      assertTrue(waitGone(fileC), "C removed its file at shutdown");
    } finally {
      for (ChildJvm c : children) {
        c.kill();
      }
      tearDownNetwork();
      try (Stream<Path> files = Files.walk(dir)) {
        for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }

  private static boolean waitGone(Path file) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (Files.exists(file)) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      Thread.sleep(20);
    }
    return true;
  }
}
