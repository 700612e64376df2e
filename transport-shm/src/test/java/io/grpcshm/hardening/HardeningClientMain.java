package io.grpcshm.hardening;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Child-JVM client for the client-kill test: opens every call type against the server at
 * {@code args[0]} plus an upload of {@code args[1]} MiB, prints {@code PORT 0} when all of them
 * are in flight and the upload is past half, then keeps going until it is killed.
 */
public final class HardeningClientMain {
  private HardeningClientMain() {}

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    long transferBytes = Long.parseLong(args[1]) << 20;
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost", port).usePlaintext()
        .maxInboundMessageSize(64 << 20).transportMode(TransportMode.SHM_ONLY).build();
    CountDownLatch streamFlowing = new CountDownLatch(1);
    CountDownLatch bidiFlowing = new CountDownLatch(1);
    CountDownLatch flowing = new CountDownLatch(1);
    // unary that the server never answers
    start(channel.newCall(Hardening.HANG, CallOptions.DEFAULT), Hardening.message(0, 10),
        null, true);
    // endless server stream, consumed
    start(channel.newCall(Hardening.SERVER_STREAM, CallOptions.DEFAULT),
        Hardening.streamRequest(-1, 64 << 10), streamFlowing, true);
    // bidi with one echo
    start(channel.newCall(Hardening.BIDI, CallOptions.DEFAULT), Hardening.message(0, 100_000),
        bidiFlowing, false);
    // client stream: upload of transferBytes in 4 MiB messages, flow-controlled
    ClientCall<byte[], byte[]> upload = channel.newCall(Hardening.CLIENT_STREAM,
        CallOptions.DEFAULT);
    AtomicLong sent = new AtomicLong();
    byte[] chunk = Hardening.message(0, 4 << 20);
    upload.start(new ClientCall.Listener<>() {
      long seq;

      @Override
      public void onReady() {
        synchronized (this) {
          while (upload.isReady() && sent.get() < transferBytes) {
            upload.sendMessage(Hardening.seal(seq++, chunk));
            if (sent.addAndGet(chunk.length) >= transferBytes / 2) {
              flowing.countDown();
            }
          }
        }
      }
    }, new Metadata());
    upload.request(1);
    flowing.await();
    streamFlowing.await();
    bidiFlowing.await();
    System.out.println("PORT 0");
    System.out.flush();
    Thread.sleep(TimeUnit.MINUTES.toMillis(10));
  }

  private static void start(ClientCall<byte[], byte[]> call, byte[] request,
      CountDownLatch flowing, boolean halfClose) {
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onMessage(byte[] message) {
        Hardening.verify(message);
        if (flowing != null) {
          flowing.countDown();
        }
        call.request(1);
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        System.err.println("client call closed early: " + status);
      }
    }, new Metadata());
    call.request(1);
    call.sendMessage(request);
    if (halfClose) {
      call.halfClose();
    }
  }
}
