package io.grpcshm;

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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Peer-credential policy: refused peers get a clear status and nothing is mapped for them. */
class AuthorizationTest {
  private static final int NOBODY = 65534;

  @Test
  void refusedClientGetsPermissionDeniedAndNothingIsMapped() throws Exception {
    Server server = ShmServerBuilder.forPort(0)
        .clientAuthorizationPolicy(PeerAuthorizationPolicy.uids(NOBODY))
        .addService(EchoService.definition()).build().start();
    ManagedChannel shmOnly = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    ManagedChannel auto = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().intercept(new EchoService.AttributeCapture()).build();
    try {
      ResourceSnapshot before = ResourceSnapshot.settled();
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> ClientCalls.blockingUnaryCall(shmOnly, EchoService.UNARY, CallOptions.DEFAULT,
              new byte[] {1}));
      assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode(), e.toString());
      assertTrue(e.getStatus().getDescription().contains("uid"), e.getStatus().getDescription());
      assertTrue(ResourceSnapshot.take().shmMappings() <= before.shmMappings(),
          "no region was created or mapped for the refused peer");

      // The default (AUTO) channel falls back to TCP, where the server's own auth applies.
      EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
      ManagedChannel autoCapturing = ShmChannelBuilder.forAddress("localhost", server.getPort())
          .usePlaintext().intercept(capture).build();
      try {
        assertArrayEquals(new byte[] {2}, ClientCalls.blockingUnaryCall(autoCapturing,
            EchoService.UNARY, CallOptions.DEFAULT, new byte[] {2}));
        assertEquals(TransportPath.TCP, TransportPath.of(capture.last.get()));
      } finally {
        autoCapturing.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    } finally {
      shmOnly.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      auto.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void clientRefusesAServerRunAsAnotherUser() throws Exception {
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition()).build().start();
    ManagedChannel ch = ShmChannelBuilder.forAddress("localhost", server.getPort()).usePlaintext()
        .transportMode(TransportMode.SHM_ONLY)
        .serverAuthorizationPolicy(PeerAuthorizationPolicy.uids(NOBODY)).build();
    try {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
          () -> ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT,
              new byte[] {1}));
      assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode(), e.toString());
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
