package io.grpcshm.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.UnsafeByteOperations;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpcshm.DataMovement;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import io.grpcshm.codec.testing.Digest;
import io.grpcshm.dsa.Mode;
import io.grpcshm.dsa.MoverKind;
import io.grpcshm.dsa.MoverRegistry;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * kill -9 of the server while the client's data movers write 64 MiB payloads into shared memory:
 * every available mover (CPU, the software engine, DSA where the host has it) in every mode
 * (SYNC, ASYNC, PIPELINED), one connection each, all to the same server, which is killed
 * {@code -Dgrpcshm.moverKills} times (default 50). The client's JVM survives every kill and every
 * call fails with UNAVAILABLE. Before a connection's teardown waited for the moves in flight, the
 * engine's raw-address copy faulted in the unmapped segment and took the JVM down (PIPELINED at
 * the first kill).
 */
class PeerKillDuringMovesTest {
  static final int KILLS = Integer.getInteger("grpcshm.moverKills", 50);
  static final int PAYLOAD = 64 << 20;
  static final int UPLOADERS_PER_CONNECTION = 2;

  static MoverRegistry movers;
  static Blob blob;

  @BeforeAll
  static void open() {
    movers = MoverRegistry.open(MoverRegistry.Options.defaults().calibrate(false));
    ByteBuffer direct = ByteBuffer.allocateDirect(PAYLOAD);
    for (int i = 0; i < PAYLOAD; i += 8) {
      direct.putLong(i, i * 0x9E3779B97F4A7C15L);
    }
    blob = Blob.newBuilder().setName("kill").setPayload(UnsafeByteOperations.unsafeWrap(direct))
        .build();
  }

  @AfterAll
  static void close() {
    movers.close();
  }

  /** One connection whose large payloads go through one mover in one mode. */
  record Lane(MoverKind mover, Mode mode, DataMovement movement, AtomicLong killsDuringMoves) {
    String name() {
      return mover + "/" + mode;
    }

    long moves() {
      return movement.counters().get(mover).moves();
    }
  }

  static CompletableFuture<ChildJvm> startServer() {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return ChildJvm.start(BlobServerMain.class, "-Xmx256m");
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
  }

  @Test
  void killedServerDuringMovesFailsCallsNeverTheProcess() throws Exception {
    List<Lane> lanes = new ArrayList<>();
    for (MoverKind kind : MoverKind.values()) {
      if (!movers.get(kind).isAvailable()) {
        System.out.println(kind + " not tested: " + movers.get(kind).unavailableReason());
        continue;
      }
      for (Mode mode : Mode.values()) {
        DataMovement m = kind == MoverKind.CPU ? DataMovement.cpuOnly().withMode(mode)
            : DataMovement.cpuOnly().withFixedMover(kind, movers).withMode(mode);
        lanes.add(new Lane(kind, mode, m, new AtomicLong()));
      }
    }
    assertTrue(lanes.size() >= 6, "CPU and the software engine, three modes each");
    CompletableFuture<ChildJvm> next = startServer();
    for (int kill = 0; kill < KILLS; kill++) {
      ChildJvm server = next.get(60, TimeUnit.SECONDS);
      next = kill + 1 < KILLS ? startServer() : null; // the next one starts meanwhile
      killDuringMoves(server, lanes, kill);
    }
    StringBuilder report = new StringBuilder(KILLS + " kills; kills during moves per lane:");
    for (Lane lane : lanes) {
      report.append(' ').append(lane.name()).append('=').append(lane.killsDuringMoves());
    }
    System.out.println(report);
    for (Lane lane : lanes) {
      assertTrue(lane.killsDuringMoves().get() >= KILLS / 2,
          "most kills must land while " + lane.name() + " moves are in flight: " + report);
    }
  }

  private static void killDuringMoves(ChildJvm server, List<Lane> lanes, int kill)
      throws Exception {
    List<ManagedChannel> channels = new ArrayList<>();
    ExecutorService uploaders =
        Executors.newFixedThreadPool(lanes.size() * UPLOADERS_PER_CONNECTION);
    try {
      List<Future<Status>> calls = new ArrayList<>();
      List<long[]> startedAndFinished = new ArrayList<>();
      List<AtomicLong> started = new ArrayList<>();
      for (Lane lane : lanes) {
        ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.port())
            .usePlaintext().transportMode(TransportMode.SHM_ONLY)
            .maxInboundMessageSize(256 << 20).dataMovement(lane.movement()).build();
        channels.add(channel);
        BlobServiceGrpc.BlobServiceBlockingStub stub = BlobServiceGrpc.newBlockingStub(channel)
            .withInterceptors(ZeroCopyServices.clientInterceptor());
        stub.withDeadlineAfter(30, TimeUnit.SECONDS)
            .summarize(Blob.newBuilder().setName("warm-up").build());
        startedAndFinished.add(new long[] {0, lane.moves()});
        AtomicLong laneStarted = new AtomicLong();
        started.add(laneStarted);
        for (int i = 0; i < UPLOADERS_PER_CONNECTION; i++) {
          // Each uploader sends until its call fails: the mover copies while the codec
          // serialises on this thread, so some copy is nearly always in flight.
          calls.add(uploaders.submit(() -> {
            while (true) {
              laneStarted.incrementAndGet();
              try {
                Digest d = stub.withDeadlineAfter(60, TimeUnit.SECONDS).summarize(blob);
                assertEquals(PAYLOAD, d.getPayloadSize());
              } catch (StatusRuntimeException e) {
                return e.getStatus();
              }
            }
          }));
        }
      }
      Thread.sleep(ThreadLocalRandom.current().nextInt(20, 120));
      // On a busy machine a lane's uploader may not have started a move yet: give every lane
      // the chance to have one in flight (bounded), then kill at once.
      long inFlightBy = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (System.nanoTime() < inFlightBy) {
        boolean all = true;
        for (int i = 0; i < lanes.size(); i++) {
          all &= started.get(i).get() > lanes.get(i).moves() - startedAndFinished.get(i)[1];
        }
        if (all) {
          break;
        }
        Thread.sleep(1);
      }
      for (int i = 0; i < lanes.size(); i++) {
        long finished = lanes.get(i).moves() - startedAndFinished.get(i)[1];
        if (started.get(i).get() > finished) {
          lanes.get(i).killsDuringMoves().incrementAndGet();
        }
      }
      server.kill();
      for (Future<Status> call : calls) {
        Status status = call.get(10, TimeUnit.SECONDS);
        assertEquals(Status.Code.UNAVAILABLE, status.getCode(), "kill " + kill + ": " + status);
      }
    } finally {
      uploaders.shutdownNow();
      for (ManagedChannel channel : channels) {
        channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      }
      server.close();
    }
  }
}
