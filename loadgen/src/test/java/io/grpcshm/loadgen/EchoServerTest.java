package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.loadgen.echo.EchoGrpc;
import io.grpcshm.loadgen.echo.EchoRequest;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** {@code grpc-load echo-server}: health, both reflection versions, metadata echo. */
class EchoServerTest {
  private static final Metadata.Key<String> TEXT =
      Metadata.Key.of("x-probe", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<byte[]> BINARY =
      Metadata.Key.of("x-probe-bin", Metadata.BINARY_BYTE_MARSHALLER);

  @Test
  void healthReportsTheEchoServiceAndTheServerServing() throws Exception {
    HealthStatusManager health = new HealthStatusManager();
    Server server = BuiltinEcho.start(0, false, health);
    ManagedChannel channel = channel(server);
    try {
      HealthGrpc.HealthBlockingStub stub = HealthGrpc.newBlockingStub(channel)
          .withDeadlineAfter(30, TimeUnit.SECONDS);
      assertEquals(ServingStatus.SERVING, stub.check(HealthCheckRequest.getDefaultInstance())
          .getStatus());
      assertEquals(ServingStatus.SERVING, stub.check(HealthCheckRequest.newBuilder()
          .setService(EchoGrpc.SERVICE_NAME).build()).getStatus());
      StatusRuntimeException unknown = assertThrows(StatusRuntimeException.class,
          () -> stub.check(HealthCheckRequest.newBuilder().setService("no.Such").build()));
      assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
      health.enterTerminalState();
      assertEquals(ServingStatus.NOT_SERVING, stub.check(HealthCheckRequest.newBuilder()
          .setService(EchoGrpc.SERVICE_NAME).build()).getStatus());
    } finally {
      close(channel, server);
    }
  }

  @Test
  void reflectionAnswersInVersionOneAndInVersionOneAlpha() throws Exception {
    Server server = BuiltinEcho.start(0);
    ManagedChannel channel = channel(server);
    try {
      List<String> v1 = listServicesV1(channel);
      assertTrue(v1.containsAll(List.of(EchoGrpc.SERVICE_NAME, "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")),
          v1.toString());
      List<String> v1alpha = listServicesV1alpha(channel);
      assertEquals(new java.util.HashSet<>(v1), new java.util.HashSet<>(v1alpha));
      // grpc-load's own descriptor source, which asks v1 first.
      assertEquals("Echo", DescriptorSource.fromReflection(channel, BuiltinEcho.CALL, 10_000)
          .getName());
    } finally {
      close(channel, server);
    }
  }

  @Test
  void echoMetadataSendsRequestHeadersBackAsResponseHeaders() throws Exception {
    assertEquals(List.of("text", "1,2,3"), echoedHeaders(true));
    assertNull(echoedHeaders(false));
  }

  /** The probe headers as the response headers carried them, or null if they did not. */
  private static List<String> echoedHeaders(boolean echo) throws Exception {
    Server server = BuiltinEcho.start(0, echo, new HealthStatusManager());
    ManagedChannel channel = channel(server);
    try {
      Metadata sent = new Metadata();
      sent.put(TEXT, "text");
      sent.put(BINARY, new byte[] {1, 2, 3});
      AtomicReference<Metadata> headers = new AtomicReference<>();
      AtomicReference<Metadata> trailers = new AtomicReference<>();
      EchoGrpc.newBlockingStub(channel)
          .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(sent),
              MetadataUtils.newCaptureMetadataInterceptor(headers, trailers))
          .withDeadlineAfter(30, TimeUnit.SECONDS)
          .echo(EchoRequest.newBuilder().setPayload(ByteString.copyFromUtf8("x")).build());
      Metadata got = headers.get();
      assertFalse(got.containsKey(Metadata.Key.of("user-agent",
          Metadata.ASCII_STRING_MARSHALLER)), got.toString());
      if (got.get(TEXT) == null) {
        assertNull(got.get(BINARY));
        return null;
      }
      assertArrayEquals(new byte[] {1, 2, 3}, got.get(BINARY));
      byte[] b = got.get(BINARY);
      return List.of(got.get(TEXT), b[0] + "," + b[1] + "," + b[2]);
    } finally {
      close(channel, server);
    }
  }

  private static List<String> listServicesV1(ManagedChannel channel) throws Exception {
    LinkedBlockingQueue<Object> answers = new LinkedBlockingQueue<>();
    StreamObserver<io.grpc.reflection.v1.ServerReflectionRequest> requests =
        io.grpc.reflection.v1.ServerReflectionGrpc.newStub(channel)
            .serverReflectionInfo(collector(answers));
    requests.onNext(io.grpc.reflection.v1.ServerReflectionRequest.newBuilder()
        .setListServices("").build());
    requests.onCompleted();
    Object answer = answers.poll(30, TimeUnit.SECONDS);
    assertTrue(answer instanceof io.grpc.reflection.v1.ServerReflectionResponse,
        String.valueOf(answer));
    return ((io.grpc.reflection.v1.ServerReflectionResponse) answer).getListServicesResponse()
        .getServiceList().stream().map(io.grpc.reflection.v1.ServiceResponse::getName).toList();
  }

  @SuppressWarnings("deprecation")
  private static List<String> listServicesV1alpha(ManagedChannel channel) throws Exception {
    LinkedBlockingQueue<Object> answers = new LinkedBlockingQueue<>();
    StreamObserver<io.grpc.reflection.v1alpha.ServerReflectionRequest> requests =
        io.grpc.reflection.v1alpha.ServerReflectionGrpc.newStub(channel)
            .serverReflectionInfo(collector(answers));
    requests.onNext(io.grpc.reflection.v1alpha.ServerReflectionRequest.newBuilder()
        .setListServices("").build());
    requests.onCompleted();
    Object answer = answers.poll(30, TimeUnit.SECONDS);
    assertTrue(answer instanceof io.grpc.reflection.v1alpha.ServerReflectionResponse,
        String.valueOf(answer));
    return ((io.grpc.reflection.v1alpha.ServerReflectionResponse) answer)
        .getListServicesResponse().getServiceList().stream()
        .map(io.grpc.reflection.v1alpha.ServiceResponse::getName).toList();
  }

  private static <T> StreamObserver<T> collector(LinkedBlockingQueue<Object> answers) {
    return new StreamObserver<>() {
      @Override
      public void onNext(T value) {
        answers.add(value);
      }

      @Override
      public void onError(Throwable t) {
        answers.add(t);
      }

      @Override
      public void onCompleted() {}
    };
  }

  private static ManagedChannel channel(Server server) {
    return ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext().build();
  }

  private static void close(ManagedChannel channel, Server server) throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
