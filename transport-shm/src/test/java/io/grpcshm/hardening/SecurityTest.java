package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpcshm.PeerAuthorizationPolicy;
import io.grpcshm.ResourceSnapshot;
import io.grpcshm.ShmAddress;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.internal.nativeio.Linux;
import io.grpcshm.internal.nativeio.NativeException;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import io.grpcshm.internal.frame.FrameLayout;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The security properties of SECURITY.md: peer-credential policy against a real second uid,
 * nothing in /dev/shm, sealed memory a peer cannot shrink or grow, and no way for one connection
 * to name another connection's blocks.
 */
class SecurityTest {
  private static final int NOBODY = 65534;
  private static Path sandbox;
  private static String sandboxClassPath;

  /** Copies the class path into a world-readable directory that uid 65534 can read. */
  @BeforeAll
  static void prepareSandbox() throws IOException {
    Assumptions.assumeTrue(Linux.getuid() == 0, "needs root to run a child as another uid");
    Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv")), "needs setpriv");
    String cp = System.getProperty("surefire.test.class.path",
        System.getProperty("java.class.path"));
    sandbox = Files.createTempDirectory("grpcshm-uid-");
    List<String> entries = new ArrayList<>();
    int i = 0;
    for (String entry : cp.split(java.io.File.pathSeparator)) {
      Path src = Path.of(entry);
      if (!Files.exists(src)) {
        continue;
      }
      Path dst = sandbox.resolve((i++) + "-" + src.getFileName());
      if (Files.isDirectory(src)) {
        try (Stream<Path> walk = Files.walk(src)) {
          for (Path p : (Iterable<Path>) walk::iterator) {
            Path t = dst.resolve(src.relativize(p).toString());
            if (Files.isDirectory(p)) {
              Files.createDirectories(t);
            } else {
              Files.copy(p, t, StandardCopyOption.REPLACE_EXISTING);
            }
          }
        }
      } else {
        Files.copy(src, dst);
      }
      entries.add(dst.toString());
    }
    try (Stream<Path> walk = Files.walk(sandbox)) {
      for (Path p : (Iterable<Path>) walk::iterator) {
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(
            Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
      }
    }
    sandboxClassPath = String.join(java.io.File.pathSeparator, entries);
  }

  @AfterAll
  static void removeSandbox() throws IOException {
    if (sandbox != null) {
      try (Stream<Path> walk = Files.walk(sandbox)) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  private static Process asNobody(String... args) throws IOException {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> cmd = new ArrayList<>(List.of("setpriv", "--reuid=" + NOBODY,
        "--regid=" + NOBODY, "--clear-groups", java, "-XX:-UsePerfData", "-Xmx256m",
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
        "-Djava.io.tmpdir=" + sandbox, "-cp", sandboxClassPath,
        ForeignUserMain.class.getName()));
    cmd.addAll(List.of(args));
    return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT)
        .directory(sandbox.toFile()).start();
  }

  private static Map<String, String> runForeignClient(int port, String... more)
      throws Exception {
    List<String> args = new ArrayList<>(List.of("client", Integer.toString(port)));
    args.addAll(List.of(more));
    Process p = asNobody(args.toArray(String[]::new));
    Map<String, String> out = new HashMap<>();
    try (BufferedReader r = new BufferedReader(
        new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        int sp = line.indexOf(' ');
        if (sp > 0) {
          out.put(line.substring(0, sp), line.substring(sp + 1));
        }
      }
    }
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "foreign client exits");
    return out;
  }

  @Test
  void clientOfAnotherUidIsRefusedAndNothingIsMapped() throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    try {
      ResourceSnapshot before = ResourceSnapshot.settled();
      Map<String, String> out = runForeignClient(server.getPort());
      assertEquals(Integer.toString(NOBODY), out.get("UID"), "child ran as nobody: " + out);
      assertTrue(out.getOrDefault("STATUS", "").startsWith("PERMISSION_DENIED"),
          "refused with PERMISSION_DENIED: " + out);
      assertTrue(out.get("STATUS").contains("uid"), "the reason names the uid: " + out);
      assertEquals("0", out.get("MAPPINGS"), "nothing mapped in the refused client");
      ResourceSnapshot after = ResourceSnapshot.awaitReleased(before);
      // Earlier tests' connections may still be unmapping (teardown is asynchronous), so the
      // count may fall; what must not happen is a new mapping for the refused peer.
      assertTrue(after.shmMappings() <= before.shmMappings(),
          "nothing mapped in the server: " + before + " -> " + after);
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    // Positive control: the same child is served when the server's policy names its uid (and
    // the child's own policy trusts a root server).
    Server allowing = ShmServerBuilder.forPort(0)
        .clientAuthorizationPolicy(PeerAuthorizationPolicy.uids(NOBODY))
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    try {
      Map<String, String> out = runForeignClient(allowing.getPort(), "0");
      assertEquals("OK", out.get("STATUS"), "allowed uid is served over shm: " + out);
    } finally {
      allowing.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void serverOfAnotherUidIsRefusedByTheClient() throws Exception {
    Process server = asNobody("server");
    try {
      BufferedReader r = new BufferedReader(
          new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
      String line = r.readLine();
      assertTrue(line != null && line.startsWith("PORT "), "foreign server started: " + line);
      int port = Integer.parseInt(line.substring(5).trim());
      ResourceSnapshot before = ResourceSnapshot.settled();
      ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
          .transportMode(TransportMode.SHM_ONLY).build();
      try {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
            () -> Calls.echo(ch, 10));
        assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode(), e.toString());
        assertTrue(ResourceSnapshot.take().shmMappings() <= before.shmMappings(),
            "no new mapping");
      } finally {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      // AUTO: the refused server is reached over TCP instead.
      ManagedChannel auto = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
          .build();
      try {
        Calls.echo(auto, 10);
      } finally {
        auto.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    } finally {
      server.getOutputStream().close();
      if (!server.waitFor(10, TimeUnit.SECONDS)) {
        server.destroyForcibly();
      }
    }
  }

  private static Set<String> devShm() throws IOException {
    try (Stream<Path> s = Files.list(Path.of("/dev/shm"))) {
      return new java.util.TreeSet<>(s.map(Path::toString).toList());
    }
  }

  @Test
  void ourMemoryNeverAppearsInDevShm() throws Exception {
    Set<String> before = devShm();
    // A 1 MiB pool makes 4 MiB messages go through extra segments as well.
    Server server = ShmServerBuilder.forPort(0).maxInboundMessageSize(64 << 20)
        .sharedMemorySizes(1 << 16, 1 << 20, 1L << 30)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().maxInboundMessageSize(64 << 20)
        .sharedMemorySizes(1 << 16, 1 << 20, 1L << 30)
        .transportMode(TransportMode.SHM_ONLY).build();
    try {
      Calls.echo(ch, 4 << 20);
      Calls.echo(ch, 100_000);
      List<String> ours;
      try (Stream<String> lines = Files.lines(Path.of("/proc/self/maps"))) {
        ours = lines.filter(l -> l.contains("grpc-shm") || l.contains("/dev/shm")).toList();
      }
      assertTrue(ours.size() >= 2, "region and segment mappings exist: " + ours);
      for (String m : ours) {
        assertTrue(m.contains("memfd:grpc-shm") && !m.contains("/dev/shm"),
            "only anonymous memfd mappings: " + m);
      }
      assertEquals(before, devShm(), "nothing created in /dev/shm");
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static ByteBuffer le(int n) {
    return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static void assertSealed(int fd, long size, String what) {
    int seals = Linux.getSeals(fd);
    int required = Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL;
    assertEquals(required, seals & required, what + " seals: " + seals);
    assertThrows(NativeException.class, () -> Linux.ftruncate(fd, size / 2),
        what + ": a peer cannot shrink it");
    assertThrows(NativeException.class, () -> Linux.ftruncate(fd, 0), what + ": nor empty it");
    assertThrows(NativeException.class, () -> Linux.ftruncate(fd, size + 4096),
        what + ": nor grow it");
    assertThrows(NativeException.class, () -> Linux.addSeals(fd, Linux.F_SEAL_SHRINK),
        what + ": seals are sealed");
    assertEquals(size, Linux.fileSize(fd), what + " size unchanged");
  }

  /** Speaks the handshake by hand, takes the region memfd and tries to resize it. */
  @Test
  void sealsStopAPeerFromResizingTheRegion() throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    ManagedChannel honest = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try (UnixSeqpacketSocket s = UnixSeqpacketSocket.connect(
        ShmAddress.defaultRendezvous(server.getPort()))) {
      // CLIENT_HELLO, protocol version 4, no target (the socket is named explicitly).
      byte[] hello = le(27).putInt(0x4d485347).put((byte) 1).put((byte) 4).putShort((short) 0)
          .putInt(1 << 16).putLong(1 << 20).putInt(1 << 20).putShort((short) 0).put((byte) 0)
          .array();
      s.send(hello, hello.length, -1);
      byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
      int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
      int n = s.receive(buf, fds, 5000);
      assertEquals(40, n, "SERVER_WELCOME");
      ByteBuffer welcome = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN);
      assertEquals(2, welcome.get(4), "type SERVER_WELCOME");
      long regionSize = welcome.getLong(20);
      int fd = fds[0];
      assertTrue(fd >= 0, "memfd attached");
      try {
        assertEquals(regionSize, Linux.fileSize(fd));
        assertSealed(fd, regionSize, "region");
      } finally {
        Linux.close(fd);
      }
    } finally {
      Calls.echo(honest, 100_000); // the server is fine
      honest.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** The same for an extra payload segment the server attaches over the socket. */
  @Test
  void sealsStopAPeerFromResizingAnExtraSegment() throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    // A tiny pool: the server must attach a segment for a 1 MiB answer.
    try (HostilePeer p = new HostilePeer(server.getPort(),
        ShmTransportConfig.defaults().toBuilder().sizes(1 << 16, 4096, 1L << 30).build())) {
      p.startCall(1, Hardening.SERVER_STREAM, Map.of());
      p.sendMessage(1, Hardening.streamRequest(1, 1 << 20), true);
      byte[] buf = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
      int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
      int n = p.established.socket().receive(buf, fds, 5000);
      ByteBuffer attach = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.LITTLE_ENDIAN);
      assertEquals(5, attach.get(4), "SEGMENT_ATTACH");
      long size = attach.getLong(12);
      assertTrue(fds[0] >= 0, "segment memfd attached");
      try {
        assertSealed(fds[0], size, "segment");
      } finally {
        Linux.close(fds[0]);
      }
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * Block references are relative to the connection they arrive on: the same (segment, offset)
   * from two connections reads each one's own pool, and a RELEASE of an extent lent on another
   * connection kills only the connection that sent it.
   */
  @Test
  void oneConnectionCannotNameAnotherConnectionsBlocks() throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    try (HostilePeer a = new HostilePeer(server.getPort());
        HostilePeer b = new HostilePeer(server.getPort())) {
      byte[] msgA = Hardening.message(1, 8000);
      byte[] msgB = Hardening.message(2, 8000);
      for (var pair : List.of(Map.entry(a, msgA), Map.entry(b, msgB))) {
        byte[] framed = HostilePeer.grpcFrame(pair.getValue());
        MemorySegment.copy(framed, 0, pair.getKey().txPool, ValueLayout.JAVA_BYTE, 0,
            framed.length);
      }
      byte[] ref = le(16).putInt(0).putInt(msgA.length + 5).putLong(0).array();
      for (HostilePeer p : List.of(a, b)) {
        p.startCall(1, Hardening.UNARY, Map.of());
        p.write(FrameLayout.TYPE_DATA_BLOCK, FrameLayout.FLAG_END_STREAM, 1, ref);
      }
      assertArrayEquals(msgA, echoed(a), "A's reference read A's pool");
      assertArrayEquals(msgB, echoed(b), "B's identical reference read B's pool");

      // The server lends A a 256 KiB extent; B names it in a RELEASE.
      a.startCall(3, Hardening.SERVER_STREAM, Map.of());
      a.sendMessage(3, Hardening.streamRequest(1, 256 << 10), true);
      List<HostilePeer.Frame> frames = a.readUntil(
          f -> HostilePeer.has(f, FrameLayout.TYPE_DATA_BLOCK, 3), 5000);
      HostilePeer.Frame lent = frames.stream()
          .filter(f -> f.type() == FrameLayout.TYPE_DATA_BLOCK).findFirst().orElseThrow();
      b.release(lent.le().getInt(0), lent.le().getLong(8));
      assertTrue(b.hungUpWithin(2000), "B's connection died");
      // A is unaffected: it returns its extent and makes another call.
      a.release(lent.le().getInt(0), lent.le().getLong(8));
      a.startCall(5, Hardening.UNARY, Map.of());
      a.sendMessage(5, msgA, true);
      List<HostilePeer.Frame> more = a.readUntil(
          f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 5), 5000);
      assertTrue(HostilePeer.has(more, FrameLayout.TYPE_DATA_INLINE, 5), "A still served");
      assertTrue(!a.hungUpWithin(100), "A still connected");
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static byte[] echoed(HostilePeer p) throws InterruptedException {
    List<HostilePeer.Frame> frames = p.readUntil(
        f -> HostilePeer.has(f, FrameLayout.TYPE_TRAILERS, 1), 5000);
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (HostilePeer.Frame f : frames) {
      if (f.type() == FrameLayout.TYPE_DATA_INLINE && f.streamId() == 1) {
        out.writeBytes(f.body());
      }
    }
    byte[] all = out.toByteArray();
    assertTrue(all.length > 5, "an answer: " + frames);
    return java.util.Arrays.copyOfRange(all, 5, all.length);
  }
}
