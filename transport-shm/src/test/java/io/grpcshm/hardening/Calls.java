package io.grpcshm.hardening;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.stub.ClientCalls;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/** Client-side helpers: a watched call records when and how it ended. */
final class Calls {
  private Calls() {}

  /** A call whose end (status and time) is recorded; messages are verified and counted. */
  static class Watched extends ClientCall.Listener<byte[]> {
    final String name;
    final ClientCall<byte[], byte[]> call;
    final CountDownLatch closed = new CountDownLatch(1);
    final AtomicReference<Status> status = new AtomicReference<>();
    final AtomicLong closedAt = new AtomicLong();
    final AtomicLong received = new AtomicLong();
    final AtomicLong receivedBytes = new AtomicLong();
    final AtomicLong corrupt = new AtomicLong();
    final CountDownLatch firstMessage = new CountDownLatch(1);

    Watched(String name, ClientCall<byte[], byte[]> call) {
      this.name = name;
      this.call = call;
    }

    @Override
    public void onMessage(byte[] message) {
      try {
        Hardening.verify(message);
      } catch (IllegalStateException e) {
        corrupt.incrementAndGet();
      }
      received.incrementAndGet();
      receivedBytes.addAndGet(message.length);
      firstMessage.countDown();
      call.request(1);
    }

    @Override
    public void onClose(Status s, Metadata trailers) {
      closedAt.set(System.nanoTime());
      status.set(s);
      closed.countDown();
    }

    long closedMillisAfter(long startNanos) {
      return TimeUnit.NANOSECONDS.toMillis(closedAt.get() - startNanos);
    }

    @Override
    public String toString() {
      return name + ": " + status.get() + ", received " + received + " messages";
    }
  }

  /** Starts a call, sends {@code request} (if not null), half-closes if asked. */
  static Watched start(Channel channel, io.grpc.MethodDescriptor<byte[], byte[]> method,
      CallOptions options, byte[] request, boolean halfClose) {
    Watched w = new Watched(method.getBareMethodName(), channel.newCall(method, options));
    w.call.start(w, new Metadata());
    w.call.request(1);
    if (request != null) {
      w.call.sendMessage(request);
    }
    if (halfClose) {
      w.call.halfClose();
    }
    return w;
  }

  /** An upload on a client stream that sends {@code chunk}-sized messages while ready. */
  static final class Upload extends Watched {
    final AtomicLong sentBytes = new AtomicLong();
    final long limit;
    private final byte[] chunk;
    private long seq;
    private boolean halfClosed;

    Upload(ClientCall<byte[], byte[]> call, int chunkSize, long limit) {
      super("upload", call);
      this.chunk = Hardening.message(0, chunkSize);
      this.limit = limit;
    }

    static Upload start(Channel channel, CallOptions options, int chunkSize, long limit) {
      Upload u = new Upload(channel.newCall(Hardening.CLIENT_STREAM, options), chunkSize, limit);
      u.call.start(u, new Metadata());
      u.call.request(1);
      u.onReady();
      return u;
    }

    @Override
    public synchronized void onReady() {
      while (!halfClosed && call.isReady() && sentBytes.get() < limit
          && closed.getCount() > 0) {
        call.sendMessage(Hardening.seal(seq++, chunk));
        sentBytes.addAndGet(chunk.length);
      }
      if (!halfClosed && sentBytes.get() >= limit && limit != Long.MAX_VALUE) {
        halfClosed = true;
        call.halfClose();
      }
    }
  }

  /** A checksummed unary echo; throws on any mismatch. */
  static void echo(Channel channel, int size) {
    byte[] request = Hardening.message(size, size);
    byte[] response = ClientCalls.blockingUnaryCall(channel, Hardening.UNARY,
        CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), request);
    Hardening.verify(response);
    if (!java.util.Arrays.equals(request, response)) {
      throw new IllegalStateException("echo differs");
    }
  }
}
