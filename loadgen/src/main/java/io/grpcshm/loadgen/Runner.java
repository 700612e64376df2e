package io.grpcshm.loadgen;

import com.google.protobuf.DynamicMessage;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;

/**
 * Drives unary calls: {@code concurrency} workers, each with one call in flight, spread
 * round-robin over the channels (connections). Stops after {@code total} calls or at the
 * duration; with a rate, call k is released at {@code start + k/rate} (a token bucket with a
 * burst of one, shared by all workers).
 */
final class Runner {
  /** What to run. total 0 = no count limit; null durations = none; rps 0 = as fast as possible. */
  record Config(int concurrency, long total, Duration duration, Duration maxDuration, double rps,
      Duration timeout, boolean keepDetails) {}

  /** One call, kept for CSV output. */
  record Detail(long requestNumber, int workerId, long startEpochNanos, long latencyNanos,
      Status.Code code, String error, TransportPath path) {}

  private final Config config;
  private final List<? extends Channel> channels;
  private final MethodDescriptor<DynamicMessage, DynamicMessage> method;
  private final RequestFactory requests;
  private final AtomicLong next = new AtomicLong();
  private final AtomicLong completed = new AtomicLong();
  private volatile long startNanos;
  private volatile boolean stopped;

  Runner(Config config, List<? extends Channel> channels,
      MethodDescriptor<DynamicMessage, DynamicMessage> method, RequestFactory requests) {
    this.config = config;
    this.channels = channels;
    this.method = method;
    this.requests = requests;
  }

  long completed() {
    return completed.get();
  }

  /** Nanoseconds since the run started (0 before). */
  long elapsedNanos() {
    long s = startNanos;
    return s == 0 ? 0 : System.nanoTime() - s;
  }

  /** Asks the workers to stop after their current call. */
  void stop() {
    stopped = true;
  }

  RunResult run() throws InterruptedException {
    int c = config.concurrency();
    Worker[] workers = new Worker[c];
    Thread[] threads = new Thread[c];
    Instant startedAt = Instant.now();
    long t0 = System.nanoTime();
    long stopAt = Long.MAX_VALUE;
    if (config.duration() != null) {
      stopAt = t0 + config.duration().toNanos();
    }
    if (config.maxDuration() != null) {
      stopAt = Math.min(stopAt, t0 + config.maxDuration().toNanos());
    }
    startNanos = t0;
    for (int i = 0; i < c; i++) {
      workers[i] = new Worker(i, channels.get(i % channels.size()), t0, stopAt);
      threads[i] = Thread.ofPlatform().name("grpc-load-worker-" + i).daemon().start(workers[i]);
    }
    for (Thread t : threads) {
      t.join();
    }
    long totalNanos = System.nanoTime() - t0;
    RunResult.Builder b = new RunResult.Builder(startedAt, totalNanos,
        config.rps() > 0 ? (long) (c * 1e9 / config.rps()) : 0);
    for (Worker w : workers) {
      b.add(w.raw, w.corrected, w.codes, w.errors, w.paths, w.details);
    }
    return b.build();
  }

  private final class Worker implements Runnable {
    final int id;
    final Channel channel;
    final long t0;
    final long stopAt;
    final Histogram raw = new Histogram(3);
    final Histogram corrected = new Histogram(3);
    final Map<Status.Code, Long> codes = new HashMap<>();
    final Map<String, Long> errors = new HashMap<>();
    final Map<TransportPath, Long> paths = new HashMap<>();
    final List<Detail> details = new ArrayList<>();

    Worker(int id, Channel channel, long t0, long stopAt) {
      this.id = id;
      this.channel = channel;
      this.t0 = t0;
      this.stopAt = stopAt;
    }

    @Override
    public void run() {
      double rps = config.rps();
      long expectedInterval = rps > 0 ? (long) (config.concurrency() * 1e9 / rps) : 0;
      while (!stopped) {
        long k = next.getAndIncrement();
        if (config.total() > 0 && k >= config.total()) {
          return;
        }
        if (rps > 0) {
          long due = t0 + (long) (k * 1e9 / rps);
          if (due >= stopAt) {
            return;
          }
          long wait;
          while ((wait = due - System.nanoTime()) > 0 && !stopped) {
            LockSupport.parkNanos(Math.min(wait, 50_000_000L));
          }
          if (stopped) {
            return;
          }
        } else if (System.nanoTime() >= stopAt) {
          return;
        }
        call(k, expectedInterval);
      }
    }

    private void call(long k, long expectedInterval) {
      Status status;
      TransportPath path = null;
      long startEpoch = 0;
      long start = System.nanoTime();
      if (config.keepDetails()) {
        Instant now = Instant.now();
        startEpoch = now.getEpochSecond() * 1_000_000_000L + now.getNano();
      }
      try {
        DynamicMessage request = requests.request(k, id);
        Metadata headers = requests.metadata(k, id);
        CallOptions options = CallOptions.DEFAULT;
        if (config.timeout() != null && !config.timeout().isZero()) {
          options = options.withDeadlineAfter(config.timeout().toNanos(), TimeUnit.NANOSECONDS);
        }
        start = System.nanoTime();
        ClientCall<DynamicMessage, DynamicMessage> call = channel.newCall(method, options);
        CompletableFuture<Status> done = new CompletableFuture<>();
        call.start(new ClientCall.Listener<>() {
          @Override public void onClose(Status s, Metadata trailers) {
            done.complete(s);
          }
        }, headers);
        call.request(1);
        call.sendMessage(request);
        call.halfClose();
        status = done.get();
        path = TransportPath.of(call.getAttributes());
      } catch (ExecutionException e) {
        status = Status.fromThrowable(e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        stopped = true;
        status = Status.CANCELLED.withDescription("interrupted");
      } catch (RuntimeException e) {
        status = Status.INTERNAL.withDescription("client: " + e.getMessage());
      }
      long latency = Math.max(1, System.nanoTime() - start);
      raw.recordValue(latency);
      if (expectedInterval > 0) {
        corrected.recordValueWithExpectedInterval(latency, expectedInterval);
      }
      codes.merge(status.getCode(), 1L, Long::sum);
      String error = null;
      if (!status.isOk()) {
        error = "rpc error: code = " + status.getCode()
            + (status.getDescription() == null ? "" : " desc = " + status.getDescription());
        errors.merge(error, 1L, Long::sum);
      }
      if (status.isOk() || path != null) {
        paths.merge(path == null ? TransportPath.OTHER : path, 1L, Long::sum);
      }
      if (config.keepDetails()) {
        details.add(new Detail(k, id, startEpoch, latency, status.getCode(), error, path));
      }
      completed.incrementAndGet();
    }
  }
}
