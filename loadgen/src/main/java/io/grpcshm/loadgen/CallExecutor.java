package io.grpcshm.loadgen;

import com.google.protobuf.DynamicMessage;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.MethodDescriptor.MethodType;
import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Makes one call of any kind, as ghz does: unary; client streaming (send the data array's
 * messages, then half-close and take the response); server streaming (send one request, receive
 * until the server ends the stream); bidi (send as client streaming while receiving). The stream
 * options bound the stream: {@code interval} between sends, {@code callCount} messages sent
 * (client/bidi) or received (server), {@code callDuration} of sending (client/bidi) or receiving
 * (server). A server stream the client ends itself (count or duration reached) is cancelled and
 * counted as OK, unlike ghz, which reports its own cancellation as an error.
 */
final class CallExecutor {
  /** ghz's stream flags; zero = not set. */
  record StreamOptions(Duration interval, Duration callDuration, long callCount,
      boolean dynamicMessages) {
    static final StreamOptions NONE = new StreamOptions(Duration.ZERO, Duration.ZERO, 0, false);
  }

  /** A finished call: its status, the path it took, and the stream messages sent and received. */
  record Outcome(Status status, TransportPath path, long sent, long received) {}

  private final MethodDescriptor<DynamicMessage, DynamicMessage> method;
  private final RequestFactory requests;
  private final Duration timeout;
  private final StreamOptions stream;
  private final Integer maxSendMessageSize; // null: grpc's default (unlimited)

  CallExecutor(MethodDescriptor<DynamicMessage, DynamicMessage> method, RequestFactory requests,
      Duration timeout, StreamOptions stream) {
    this(method, requests, timeout, stream, null);
  }

  CallExecutor(MethodDescriptor<DynamicMessage, DynamicMessage> method, RequestFactory requests,
      Duration timeout, StreamOptions stream, Integer maxSendMessageSize) {
    this.method = method;
    this.requests = requests;
    this.timeout = timeout;
    this.stream = stream;
    this.maxSendMessageSize = maxSendMessageSize;
  }

  /** Everything built before the clock starts: headers and (static) messages. */
  record Prepared(Metadata headers, List<DynamicMessage> messages) {}

  Prepared prepare(long k, int workerId) {
    Metadata headers = requests.metadata(k, workerId);
    MethodType type = method.getType();
    if (type == MethodType.UNARY || type == MethodType.SERVER_STREAMING) {
      return new Prepared(headers, List.of(requests.request(k, workerId)));
    }
    // Dynamic messages are rendered per send, during the call (as ghz).
    return new Prepared(headers, stream.dynamicMessages() ? null : requests.items(k, workerId));
  }

  Outcome execute(Channel channel, Prepared prepared, long k, int workerId)
      throws InterruptedException {
    CallOptions options = CallOptions.DEFAULT;
    if (maxSendMessageSize != null) {
      options = options.withMaxOutboundMessageSize(maxSendMessageSize);
    }
    if (timeout != null && !timeout.isZero()) {
      options = options.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }
    long begin = System.nanoTime();
    ClientCall<DynamicMessage, DynamicMessage> call = channel.newCall(method, options);
    MethodType type = method.getType();
    long receiveLimit = type == MethodType.SERVER_STREAMING ? stream.callCount() : 0;
    Listener listener = new Listener(call, receiveLimit, Thread.currentThread());
    call.start(listener, prepared.headers());
    call.request(1);
    long sent = 0;
    try {
      if (type == MethodType.UNARY || type == MethodType.SERVER_STREAMING) {
        call.sendMessage(prepared.messages().get(0));
        sent = 1;
        call.halfClose();
      } else {
        sent = sendStream(call, listener, prepared, k, workerId, begin);
      }
    } catch (RuntimeException e) {
      call.cancel("client: " + e.getMessage(), e);
    }
    Status status = await(call, listener, type, begin);
    if (listener.endedByClient.get() && status.getCode() == Status.Code.CANCELLED) {
      status = Status.OK;
    }
    return new Outcome(status, TransportPath.of(call.getAttributes()), sent,
        listener.received.get());
  }

  private long sendStream(ClientCall<DynamicMessage, DynamicMessage> call, Listener listener,
      Prepared prepared, long k, int workerId, long begin) {
    List<DynamicMessage> items = prepared.messages();
    long count = stream.callCount() > 0 ? stream.callCount()
        : items != null ? items.size() : requests.items(k, workerId).size();
    long stopAt = stream.callDuration().isZero() ? Long.MAX_VALUE
        : begin + stream.callDuration().toNanos();
    long interval = stream.interval().toNanos();
    long sent = 0;
    for (long j = 0; j < count; j++) {
      // Respect flow control, as ghz's blocking SendMsg does: a long stream must not pile up
      // in memory when the server reads slower than we send.
      while (!call.isReady() && !listener.done.isDone() && System.nanoTime() < stopAt) {
        LockSupport.parkNanos(listener, 10_000_000L);
      }
      if (listener.done.isDone() || System.nanoTime() >= stopAt) {
        break;
      }
      List<DynamicMessage> source = items != null ? items : requests.items(k, workerId);
      call.sendMessage(source.get((int) (j % source.size())));
      sent++;
      if (interval > 0 && j + 1 < count) {
        long until = Math.min(System.nanoTime() + interval, stopAt);
        long wait;
        while ((wait = until - System.nanoTime()) > 0 && !listener.done.isDone()) {
          LockSupport.parkNanos(wait);
        }
      }
    }
    call.halfClose();
    return sent;
  }

  private Status await(ClientCall<DynamicMessage, DynamicMessage> call, Listener listener,
      MethodType type, long begin) throws InterruptedException {
    try {
      if (type == MethodType.SERVER_STREAMING && !stream.callDuration().isZero()) {
        long left = begin + stream.callDuration().toNanos() - System.nanoTime();
        try {
          return listener.done.get(Math.max(0, left), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
          listener.endedByClient.set(true);
          call.cancel("stream-call-duration reached", null);
        }
      }
      return listener.done.get();
    } catch (InterruptedException e) {
      call.cancel("interrupted", e);
      throw e;
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause());
    }
  }

  private static final class Listener extends ClientCall.Listener<DynamicMessage> {
    final ClientCall<DynamicMessage, DynamicMessage> call;
    final long receiveLimit;
    final CompletableFuture<Status> done = new CompletableFuture<>();
    final AtomicLong received = new AtomicLong();
    final AtomicBoolean endedByClient = new AtomicBoolean();

    final Thread sender;

    Listener(ClientCall<DynamicMessage, DynamicMessage> call, long receiveLimit,
        Thread sender) {
      this.call = call;
      this.receiveLimit = receiveLimit;
      this.sender = sender;
    }

    @Override
    public void onReady() {
      LockSupport.unpark(sender);
    }

    @Override
    public void onMessage(DynamicMessage message) {
      long n = received.incrementAndGet();
      if (receiveLimit > 0 && n >= receiveLimit) {
        endedByClient.set(true);
        call.cancel("stream-call-count reached", null);
      } else {
        call.request(1);
      }
    }

    @Override
    public void onClose(Status status, Metadata trailers) {
      done.complete(status);
      LockSupport.unpark(sender);
    }
  }
}
