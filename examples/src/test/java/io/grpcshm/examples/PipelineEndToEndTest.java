package io.grpcshm.examples;

import io.grpcshm.childjvm.ChildJvm;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpcshm.MoveEvent;
import io.grpcshm.TransportMode;
import io.grpcshm.TransportPath;
import io.grpcshm.examples.pipeline.InferenceGrpc;
import io.grpcshm.examples.pipeline.InferenceResult;
import io.grpcshm.examples.pipeline.TensorBatch;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link PipelineServer} in a child JVM, the pipeline's client code in this one: tensor batches of
 * 1-8 MB over shared memory and over TCP, checked against the client's own run of the model.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class PipelineEndToEndTest {
  private static ChildJvm server;
  private static String target;
  private static final List<ManagedChannel> CHANNELS = new ArrayList<>();

  @BeforeAll
  static void startServer() throws Exception {
    server = ExitWithParent.startServer("inference", PipelineServer.class, "0");
    target = "localhost:" + server.awaitPort(Duration.ofSeconds(60));
  }

  @AfterAll
  static void stopServer() throws Exception {
    try {
      for (ManagedChannel channel : CHANNELS) {
        assertTrue(channel.isTerminated(), "every channel of the test is shut down: " + channel);
      }
    } finally {
      if (server != null) {
        int exitCode = server.stop();
        assertFalse(server.isAlive());
        assertEquals(0, exitCode, "the server should exit by itself when its stdin closes");
      }
    }
  }

  private static Pipeline.Link open(String name, TransportMode mode, TransportPath expected) {
    Pipeline.Link link = Pipeline.Link.open(name, target, mode, expected);
    CHANNELS.add(link.channel);
    return link;
  }

  @Test
  void batchesGiveTheSameScoresAndChecksumsOverSharedMemoryAndTcp() {
    try (Pipeline.Link shm = open("shm", TransportMode.SHM_ONLY, TransportPath.SHARED_MEMORY);
         Pipeline.Link tcp = open("tcp", TransportMode.TCP_ONLY, TransportPath.TCP)) {
      long id = 1;
      for (int images : new int[] {2, 7, 13}) { // 1.2, 4.2 and 7.8 MB
        TensorBatch batch = Preprocessor.batch(id++, images);
        InferenceResult.Builder expected = SyntheticModel.run(batch);

        Pipeline.CallRecord overShm = shm.infer(batch, expected);
        List<MoveEvent> shmMoves = shm.decisions.callEvents();
        Pipeline.CallRecord overTcp = tcp.infer(batch, expected);
        List<MoveEvent> tcpMoves = tcp.decisions.callEvents();

        assertEquals(TransportPath.SHARED_MEMORY, overShm.path());
        assertEquals(TransportPath.TCP, overTcp.path());
        for (Pipeline.CallRecord call : List.of(overShm, overTcp)) {
          InferenceResult r = call.result();
          assertEquals(batch.getBatchId(), r.getBatchId());
          assertEquals(images, r.getImagesCount());
          assertEquals(expected.getImagesList(), r.getImagesList());
          assertEquals(Integer.toHexString(SyntheticModel.crc32c(
              batch.getData().asReadOnlyByteBuffer())), Integer.toHexString(r.getDataCrc32C()));
          assertEquals(SyntheticModel.TOP_K, r.getImages(0).getTopCount());
          assertEquals(batch.getData().size(), call.bytes());
        }
        assertEquals(overShm.result(), overTcp.result().toBuilder()
            .setComputeNanos(overShm.result().getComputeNanos())
            .setReadInPlace(overShm.result().getReadInPlace()).build(),
            "identical answers on both paths apart from timing and read_in_place");
        assertTrue(overShm.readInPlace(), "over shm the server reads the tensor in place");
        assertFalse(overTcp.readInPlace(), "over TCP the codec copies the split frames");
        // The off-heap tensor went through the data movers, once, whole; TCP has no movers.
        assertEquals(batch.getData().size(),
            shmMoves.stream().mapToLong(MoveEvent::bytes).sum(), shmMoves.toString());
        shmMoves.forEach(e -> assertEquals("grpcshm.examples.pipeline.Inference/Infer",
            e.method()));
        assertEquals(List.of(), tcpMoves);
        assertEquals(MoverDecisions.NONE, overTcp.mover());
        assertTrue(overShm.mover().startsWith(shmMoves.getFirst().mover().name()),
            overShm.mover());
      }
    }
  }

  @Test
  void streamedBatchesComeBackInOrderOnBothPaths() throws Exception {
    List<TensorBatch> batches = new ArrayList<>();
    List<InferenceResult.Builder> expected = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      TensorBatch batch = Preprocessor.batch(100 + i, 2 + i);
      batches.add(batch);
      expected.add(SyntheticModel.run(batch));
    }
    try (Pipeline.Link shm = open("shm", TransportMode.SHM_ONLY, TransportPath.SHARED_MEMORY);
         Pipeline.Link tcp = open("tcp", TransportMode.TCP_ONLY, TransportPath.TCP)) {
      for (Pipeline.Link link : List.of(shm, tcp)) {
        List<Pipeline.CallRecord> records = link.inferStream(batches, expected);

        assertEquals(3, records.size());
        for (int i = 0; i < 3; i++) {
          assertEquals(100 + i, records.get(i).result().getBatchId());
          assertEquals(expected.get(i).getImagesList(), records.get(i).result().getImagesList());
          assertEquals(expected.get(i).getDataCrc32C(), records.get(i).result().getDataCrc32C());
          assertEquals(link.expectedPath, records.get(i).path());
        }
      }
    }
  }

  @Test
  void aTensorWhoseShapeDoesNotMatchItsBytesIsRejected() {
    TensorBatch good = Preprocessor.batch(7, 2);
    TensorBatch bad = good.toBuilder().setShape(0, 3).build();
    try (Pipeline.Link shm = open("shm", TransportMode.SHM_ONLY, TransportPath.SHARED_MEMORY)) {
      var stub = InferenceGrpc.newBlockingStub(shm.channel)
          .withMaxOutboundMessageSize(InferenceService.MAX_MESSAGE_BYTES)
          .withDeadlineAfter(30, TimeUnit.SECONDS);

      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stub.infer(bad));

      assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
      assertTrue(e.getStatus().getDescription().contains("needs 1806336 bytes"),
          e.getStatus().getDescription());
      // The server is still fine and the same bytes with the right shape are accepted.
      assertEquals(SyntheticModel.run(good).getImagesList(), stub.infer(good).getImagesList());
    }
  }

  @Test
  void pipelineRunPrintsOneCheckedLinePerCallAndASummary() throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    Pipeline.Options options = new Pipeline.Options(target, List.of(1.0, 3.0), 2, 0, 2);

    Pipeline.Report report;
    try (PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      report = Pipeline.run(options, out);
    }
    String output = bytes.toString(StandardCharsets.UTF_8);

    assertEquals(2 * 2 * 2, report.calls().size(), output); // sizes x calls x paths
    assertEquals(2 * 2, report.streamed().size(), output); // batches x paths
    assertEquals(4, report.calls().stream()
        .filter(c -> c.path() == TransportPath.SHARED_MEMORY).count());
    assertEquals(List.of(2, 2, 2, 2, 5, 5, 5, 5),
        report.calls().stream().map(Pipeline.CallRecord::images).toList());
    List<String> callLines = output.lines()
        .filter(l -> l.matches("\\s*\\d+\\s+\\d+\\s+[\\d.]+\\s+(SHARED_MEMORY|TCP)\\s.*")).toList();
    assertEquals(8, callLines.size(), output);
    assertTrue(output.contains("tcp/shm"), output);
    assertTrue(output.contains("All 8 results matched"), output);
    assertTrue(output.contains("stream over SHARED_MEMORY"), output);
  }
}
