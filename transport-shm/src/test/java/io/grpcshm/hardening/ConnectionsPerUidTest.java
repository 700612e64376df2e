package io.grpcshm.hardening;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** One uid cannot hold more connections to a server than maxConnectionsPerUid. */
class ConnectionsPerUidTest {
  private static ManagedChannel channel(int port) {
    return ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY).build();
  }

  @Test
  void connectionsBeyondTheLimitAreRefusedAndAFreedOneIsReusable() throws Exception {
    Server server = ShmServerBuilder.forPort(0).maxConnectionsPerUid(3)
        .addService(Hardening.service(new Hardening.Stats())).build().start();
    List<ManagedChannel> channels = new ArrayList<>();
    try {
      for (int i = 0; i < 3; i++) {
        ManagedChannel ch = channel(server.getPort());
        channels.add(ch);
        Calls.echo(ch, 100);
      }
      ManagedChannel fourth = channel(server.getPort());
      channels.add(fourth);
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> Calls.echo(fourth, 100));
      assertTrue(String.valueOf(e.getStatus().getDescription()).contains("maxConnectionsPerUid"),
          e.toString());
      // One of the three goes away: its place is free once the server saw it end.
      channels.get(0).shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      boolean served = false;
      while (!served && System.nanoTime() < until) {
        ManagedChannel again = channel(server.getPort());
        channels.add(again);
        try {
          Calls.echo(again, 100);
          served = true;
        } catch (StatusRuntimeException stillFull) {
          Thread.sleep(50);
        }
      }
      assertTrue(served, "a connection freed by a closed channel is available again");
      for (int i = 1; i < 3; i++) {
        Calls.echo(channels.get(i), 100); // the others were never disturbed
      }
    } finally {
      for (ManagedChannel ch : channels) {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
