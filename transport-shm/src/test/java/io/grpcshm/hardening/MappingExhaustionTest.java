package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.internal.nativeio.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The attack that aborted the JVM: one uid opens 245 connections and attaches 256 sealed 4 KiB
 * segments on each (all the same memfd), 62,720 mappings against the kernel's limit of 65,530
 * per process, shared with the JVM's own heap, threads and code. The server (a child JVM) must
 * refuse segments beyond its budget, stay alive and keep serving an honest client.
 */
class MappingExhaustionTest {
  private static final int CONNECTIONS = 245;
  private static final int SEGMENTS_PER_CONNECTION = 256;

  private static long mappingsOf(long pid) throws Exception {
    try (var lines = Files.lines(Path.of("/proc/" + pid + "/maps"))) {
      return lines.count();
    }
  }

  @Test
  void oneUidCannotExhaustTheServersMappings() throws Exception {
    int fd = Linux.memfdCreate("hostile-segment");
    Linux.ftruncate(fd, 4096);
    Linux.addSeals(fd, Linux.F_SEAL_SHRINK | Linux.F_SEAL_GROW | Linux.F_SEAL_SEAL);
    ChildJvm server = ChildJvm.start(HardeningServerMain.class, "-Xmx256m");
    List<HostilePeer> peers = new ArrayList<>();
    ManagedChannel honest = null;
    try {
      long baseline = mappingsOf(server.pid());
      long accepted = 0;
      long refused = 0;
      for (int c = 0; c < CONNECTIONS && server.isAlive(); c++) {
        HostilePeer p = new HostilePeer(server.port());
        peers.add(p);
        // In batches of 16: the answers fit the socket's buffer, the attack runs at full speed.
        for (int id = 1; id <= SEGMENTS_PER_CONNECTION && server.isAlive(); id += 16) {
          int mapped = SoakAttacker.attachBatch(p.established.socket(), id, 16, fd);
          if (mapped < 0) {
            break;
          }
          accepted += mapped;
          refused += 16 - mapped;
        }
      }
      assertTrue(server.isAlive(), "the server died after " + accepted + " mapped segments");
      assertTrue(refused > 0, "no segment refused: " + accepted + " mapped");
      long mappings = mappingsOf(server.pid());
      assertTrue(mappings < 65_530 * 3 / 4,
          "the server holds " + mappings + " mappings (was " + baseline + ")");
      honest = ShmChannelBuilder.forAddress("localhost", server.port()).usePlaintext()
          .transportMode(TransportMode.SHM_ONLY).build();
      Calls.echo(honest, 2 << 20); // block payloads: the pool
      Calls.echo(honest, 100);
      for (HostilePeer p : peers) {
        p.close();
      }
      peers.clear();
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (mappingsOf(server.pid()) > baseline + 1_000 && System.nanoTime() < until) {
        Thread.sleep(50);
      }
      long after = mappingsOf(server.pid());
      assertTrue(after <= baseline + 1_000, "after the attack the server still holds " + after
          + " mappings (baseline " + baseline + ")");
      Calls.echo(honest, 100);
    } finally {
      for (HostilePeer p : peers) {
        p.close();
      }
      if (honest != null) {
        honest.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      server.close();
      Linux.close(fd);
    }
  }
}
