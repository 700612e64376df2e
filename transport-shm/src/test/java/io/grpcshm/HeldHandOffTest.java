package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ConnectivityState;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * Over shared memory the call executors (the server's and the channel's) are wrapped so that an
 * event loop holds its hand-offs to the end of a ring batch. An executor that refuses a held
 * hand-off must fail that call as a refusal at once would, and nothing else.
 */
class HeldHandOffTest {
  private static final long BOUND_SECONDS = 30;

  /** Runs tasks on a pool, refusing the next {@link #refusals} of them. */
  private static final class RefusingExecutor implements Executor {
    final ExecutorService pool = Executors.newCachedThreadPool();
    final AtomicInteger refusals = new AtomicInteger();

    @Override
    public void execute(Runnable task) {
      if (refusals.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
        throw new RejectedExecutionException("test executor is full");
      }
      pool.execute(task);
    }
  }

  @Test
  void aServerExecutorRefusingACallFailsThatCallAndTheConnectionServesTheNext()
      throws Exception {
    RefusingExecutor executor = new RefusingExecutor();
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition())
        .executor(executor).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try {
      byte[] warm = ClientCalls.blockingUnaryCall(channel, EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(BOUND_SECONDS, TimeUnit.SECONDS), new byte[] {1});
      assertArrayEquals(new byte[] {1}, warm);

      executor.refusals.set(1);
      StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
          () -> ClientCalls.blockingUnaryCall(channel, EchoService.UNARY,
              CallOptions.DEFAULT.withDeadlineAfter(BOUND_SECONDS, TimeUnit.SECONDS),
              new byte[] {2}));
      assertEquals(Status.Code.INTERNAL, refused.getStatus().getCode(), refused.toString());
      assertTrue(refused.getStatus().getDescription().contains("could not start the call"),
          refused.toString());

      byte[] after = ClientCalls.blockingUnaryCall(channel, EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(BOUND_SECONDS, TimeUnit.SECONDS), new byte[] {3});
      assertArrayEquals(new byte[] {3}, after);
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      executor.pool.shutdownNow();
    }
  }

  @Test
  void aChannelExecutorRefusingACallsCallbacksCancelsThatCallAtTheServerAndSaysSo()
      throws Exception {
    CountDownLatch firstMessageSent = new CountDownLatch(1);
    CountDownLatch serverSawCancel = new CountDownLatch(1);
    RefusingExecutor clientExecutor = new RefusingExecutor();
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.SERVER_STREAM, ServerCalls.asyncServerStreamingCall(
            (byte[] request, StreamObserver<byte[]> responses) -> {
              Context.current().addListener(c -> serverSawCancel.countDown(), Runnable::run);
              try {
                // Refuse the client's next hand-off: the answer's first callbacks.
                clientExecutor.refusals.set(Integer.MAX_VALUE);
                responses.onNext(request);
              } finally {
                firstMessageSent.countDown();
              }
              // The stream stays open: only the client's cancel ends it.
            }))
        .build();
    Server server = ShmServerBuilder.forPort(0).addService(service).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).executor(clientExecutor).build();
    LogCapture logs = new LogCapture();
    Logger transportLog = Logger.getLogger(
        "io.grpcshm.internal.transport.ShmClientTransport");
    transportLog.addHandler(logs);
    try {
      // Connected first: a call made while the channel connects goes through grpc's delayed
      // stream, whose own hand-off of the answer's first callbacks to this executor lets the
      // refusal escape on the executor's thread (grpc's path, not ours; seen once in a suite
      // run). The refusal under test is the transport's hand-off.
      assertTrue(Eventually.holds(() -> channel.getState(true) == ConnectivityState.READY,
          BOUND_SECONDS), "connected");
      ClientCalls.asyncServerStreamingCall(channel.newCall(EchoService.SERVER_STREAM,
          CallOptions.DEFAULT.withDeadlineAfter(BOUND_SECONDS * 4, TimeUnit.SECONDS)),
          new byte[] {1}, new StreamObserver<byte[]>() {
            @Override
            public void onNext(byte[] value) {}

            @Override
            public void onError(Throwable t) {}

            @Override
            public void onCompleted() {}
          });
      assertTrue(firstMessageSent.await(BOUND_SECONDS, TimeUnit.SECONDS));
      assertTrue(serverSawCancel.await(BOUND_SECONDS, TimeUnit.SECONDS),
          "the refused call must end at the server, not hang until its deadline");
      // The client's loop logs after it has cancelled, so the server may see the cancel first.
      assertTrue(Eventually.holds(() -> logs.records().stream().anyMatch(
          r -> r.getMessage().contains("executor refused the call's callbacks")), BOUND_SECONDS),
          "a refused call is logged");
    } finally {
      transportLog.removeHandler(logs);
      clientExecutor.refusals.set(0);
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      clientExecutor.pool.shutdownNow();
    }
  }

  /**
   * Over shared memory the server's hand-offs to grpc's default pool queue behind a running one
   * (DefaultPoolRelay). A handler that blocks until a later call on the same connection has run
   * must not hold that call back: it runs on another pool thread.
   */
  @Test
  void aHandlerBlockedUntilALaterCallOnItsConnectionHasRunDoesNotHoldThatCallBack()
      throws Exception {
    CountDownLatch firstWaiting = new CountDownLatch(1);
    CountDownLatch secondRan = new CountDownLatch(1);
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.UNARY, ServerCalls.asyncUnaryCall(
            (byte[] request, StreamObserver<byte[]> response) -> {
              if (request[0] == 1) {
                firstWaiting.countDown();
                try {
                  if (!secondRan.await(BOUND_SECONDS, TimeUnit.SECONDS)) {
                    response.onError(Status.DEADLINE_EXCEEDED
                        .withDescription("the second call never ran").asRuntimeException());
                    return;
                  }
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                  response.onError(Status.CANCELLED.asRuntimeException());
                  return;
                }
              } else {
                secondRan.countDown();
              }
              response.onNext(request);
              response.onCompleted();
            }))
        .build();
    // grpc's default executor on both sides: the relayed one.
    Server server = ShmServerBuilder.forPort(0).addService(service).build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try {
      var first = ClientCalls.futureUnaryCall(channel.newCall(EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(BOUND_SECONDS * 2, TimeUnit.SECONDS)),
          new byte[] {1});
      assertTrue(firstWaiting.await(BOUND_SECONDS, TimeUnit.SECONDS), "first call running");
      byte[] second = ClientCalls.blockingUnaryCall(channel, EchoService.UNARY,
          CallOptions.DEFAULT.withDeadlineAfter(BOUND_SECONDS, TimeUnit.SECONDS), new byte[] {2});
      assertArrayEquals(new byte[] {2}, second);
      assertArrayEquals(new byte[] {1}, first.get(BOUND_SECONDS, TimeUnit.SECONDS));
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }
}
