package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadInfo;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BiConsumer;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * With {@code directExecutor()} grpc runs application callbacks on the transport's threads. An
 * application that holds its own lock while it sends, and takes the same lock in {@code
 * onMessage}, must not deadlock: the transport never makes a sender wait for a thread that is
 * running a callback (a transport lock held across callbacks would: the sender waits for it
 * under the application's lock, the callback waits for the application's lock under it).
 */
class ApplicationLockTest {
  private static final int MESSAGES = 20_000;
  private static final long BOUND_SECONDS = 120;

  @Test
  void clientSendingUnderItsLockWhileCallbacksTakeItDoesNotDeadlock() throws Exception {
    Server server = ShmServerBuilder.forPort(0).addService(EchoService.definition())
        .build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).directExecutor().build();
    try {
      Object appLock = new Object();
      AtomicInteger received = new AtomicInteger();
      bidiCall(channel, appLock, received, (call, payload) -> {
        synchronized (appLock) {
          call.sendMessage(payload);
        }
      });
      assertEquals(MESSAGES, received.get());
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void serverSendingUnderItsLockWhileCallbacksTakeItDoesNotDeadlock() throws Exception {
    Object appLock = new Object();
    AtomicInteger serverReceived = new AtomicInteger();
    CountDownLatch firstRequestMessage = new CountDownLatch(1);
    CountDownLatch clientHalfClosed = new CountDownLatch(1);
    ServerServiceDefinition pushing = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.BIDI, ServerCalls.asyncBidiStreamingCall(responses -> {
          // A thread of the application pushes responses under its lock while the transport runs
          // onNext, which takes the same lock. It starts once the first request message has
          // arrived, so pushes and callbacks overlap however the threads are scheduled, and it
          // ends the call only after the client has half-closed, so every request message is
          // delivered (a call the server has closed drops what arrives later).
          Thread pusher = new Thread(() -> {
            try {
              if (!firstRequestMessage.await(BOUND_SECONDS, TimeUnit.SECONDS)) {
                responses.onError(Status.DEADLINE_EXCEEDED
                    .withDescription("no request message arrived").asRuntimeException());
                return;
              }
              byte[] payload = new byte[100];
              for (int i = 0; i < MESSAGES; i++) {
                synchronized (appLock) {
                  responses.onNext(payload);
                }
              }
              if (!clientHalfClosed.await(BOUND_SECONDS, TimeUnit.SECONDS)) {
                responses.onError(Status.DEADLINE_EXCEEDED
                    .withDescription("the client did not half-close").asRuntimeException());
                return;
              }
              synchronized (appLock) {
                responses.onCompleted();
              }
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            } catch (RuntimeException callCancelled) {
              // The call ended under it (the test has failed or is shutting down): stop pushing.
            }
          }, "application-pusher");
          pusher.setDaemon(true);
          pusher.start();
          return new StreamObserver<byte[]>() {
            @Override
            public void onNext(byte[] value) {
              synchronized (appLock) {
                serverReceived.incrementAndGet();
              }
              firstRequestMessage.countDown();
            }

            @Override
            public void onError(Throwable t) {
              // Cancelled: release the pusher at once, whatever it waits for.
              firstRequestMessage.countDown();
              clientHalfClosed.countDown();
            }

            @Override
            public void onCompleted() {
              clientHalfClosed.countDown();
            }
          };
        }))
        .build();
    Server server = ShmServerBuilder.forPort(0).addService(pushing).directExecutor()
        .build().start();
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY).build();
    try {
      AtomicInteger received = new AtomicInteger();
      bidiCall(channel, new Object(), received, ClientCall::sendMessage);
      assertEquals(MESSAGES, received.get());
      assertEquals(MESSAGES, serverReceived.get());
    } finally {
      channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
      server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    }
  }

  /**
   * Sends {@link #MESSAGES} on a bidi call through {@code send}, half-closes, and waits (bounded)
   * for OK; every message received is counted under {@code appLock}.
   */
  private static void bidiCall(ManagedChannel channel, Object appLock, AtomicInteger received,
      BiConsumer<ClientCall<byte[], byte[]>, byte[]> send) throws InterruptedException {
    AtomicReference<Status> closed = new AtomicReference<>();
    CountDownLatch done = new CountDownLatch(1);
    ClientCall<byte[], byte[]> call = channel.newCall(EchoService.BIDI, CallOptions.DEFAULT);
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onMessage(byte[] message) {
        synchronized (appLock) {
          received.incrementAndGet();
        }
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        closed.set(status);
        done.countDown();
      }
    }, new Metadata());
    call.request(MESSAGES);
    byte[] payload = new byte[100];
    for (int i = 0; i < MESSAGES; i++) {
      send.accept(call, payload);
    }
    synchronized (appLock) {
      call.halfClose();
    }
    awaitOrDump(done);
    assertEquals(Status.Code.OK, closed.get().getCode(), closed.get().toString());
  }

  /** A deadlock shows as a timeout; the failure then names the threads that hold what. */
  private static void awaitOrDump(CountDownLatch done) throws InterruptedException {
    if (!done.await(BOUND_SECONDS, TimeUnit.SECONDS)) {
      ThreadInfo[] threads = ManagementFactory.getThreadMXBean().dumpAllThreads(true, false);
      fail("call did not finish in " + BOUND_SECONDS + " s (deadlock?):\n" + Arrays.stream(threads)
          .filter(t -> t.getLockOwnerName() != null)
          .map(ThreadInfo::toString).collect(Collectors.joining("\n")));
    }
  }
}
