package io.grpcshm.loadgen;

import io.grpc.Channel;
import io.grpc.Status;
import io.grpcshm.TransportPath;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * Drives calls: workers, each with one call in flight, spread round-robin over the channels
 * (connections). Stops after {@code total} calls or at the duration. With a rate schedule, call k
 * is released at the schedule's due time for k (a token bucket with a burst of one, shared by all
 * workers). With a concurrency schedule, this thread starts workers as the schedule rises, and
 * workers whose index reaches the scheduled count leave as it falls.
 */
final class Runner {
  /**
   * What to run. total 0 = no count limit; null durations = none; rate null = as fast as
   * possible; skipFirst = responses left out of the statistics.
   */
  record Config(Schedule concurrencySchedule, long total, Duration duration,
      Duration maxDuration, Schedule rateSchedule, Duration timeout, boolean keepDetails,
      long skipFirst, CallExecutor.StreamOptions stream, boolean countErrors) {

    /** A constant load: c workers, at rps (0 = unlimited); failed calls timed too. */
    static Config simple(int c, long total, Duration duration, Duration maxDuration, double rps,
        Duration timeout, boolean keepDetails) {
      return new Config(Schedule.constant(c), total, duration, maxDuration,
          rps > 0 ? Schedule.constant(rps) : null, timeout, keepDetails, 0,
          CallExecutor.StreamOptions.NONE, true);
    }

    /** Workers at the start. */
    int concurrency() {
      return (int) concurrencySchedule.start();
    }

    /** The constant rate, or 0 when unlimited or scheduled. */
    double rps() {
      return rateSchedule != null && rateSchedule.isConstant() ? rateSchedule.start() : 0;
    }

    boolean scheduled() {
      return !concurrencySchedule.isConstant()
          || (rateSchedule != null && !rateSchedule.isConstant());
    }
  }

  /** One call, kept for CSV output. */
  record Detail(long requestNumber, int workerId, long startEpochNanos, long latencyNanos,
      Status.Code code, String error, TransportPath path) {}

  private final Config config;
  private final List<? extends Channel> channels;
  private final CallExecutor executor;
  private final AtomicLong next = new AtomicLong();
  private final AtomicLong completed = new AtomicLong();
  private final AtomicLong responses = new AtomicLong();
  /** Request numbers taken by workers that were switched off before sending them. */
  private final Queue<Long> handedBack = new ConcurrentLinkedQueue<>();
  private final Object lock = new Object();
  private int running;
  private volatile long startNanos;
  /** The run's start and end (System.nanoTime); set before the workers' gate opens. */
  private long t0;
  private long stopAt;
  private volatile boolean stopped;

  Runner(Config config, List<? extends Channel> channels, CallExecutor executor) {
    this.config = config;
    this.channels = channels;
    this.executor = executor;
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
    Schedule cs = config.concurrencySchedule();
    List<Worker> workers = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    int active = (int) cs.valueAt(0);
    // The first workers start together: the clock starts once their threads exist, so the
    // first one does not run ahead while the others are still being created.
    CountDownLatch gate = new CountDownLatch(1);
    startWorkers(workers, threads, active, gate);
    Instant startedAt = Instant.now();
    long t0 = System.nanoTime();
    long stop = Long.MAX_VALUE;
    if (config.duration() != null) {
      stop = t0 + config.duration().toNanos();
    }
    if (config.maxDuration() != null) {
      stop = Math.min(stop, t0 + config.maxDuration().toNanos());
    }
    this.t0 = t0;
    this.stopAt = stop;
    startNanos = t0;
    gate.countDown();
    synchronized (lock) {
      while (true) {
        startWorkers(workers, threads, active, gate);
        long change = cs.nextChangeAfter(System.nanoTime() - t0);
        long changeAt = change == Schedule.NEVER ? Long.MAX_VALUE : t0 + change;
        long now;
        while (running > 0 && (now = System.nanoTime()) < changeAt) {
          long waitMs = Math.max(1, Math.min(1000, (changeAt - now) / 1_000_000));
          lock.wait(waitMs);
        }
        if (running == 0) {
          break;
        }
        active = (int) cs.valueAt(System.nanoTime() - t0);
      }
    }
    for (Thread t : threads) {
      t.join();
    }
    long totalNanos = System.nanoTime() - t0;
    long interval = config.rateSchedule() == null ? 0
        : (long) (cs.valueAt(0) * 1e9 / config.rateSchedule().valueAt(0));
    RunResult.Builder b = new RunResult.Builder(startedAt, totalNanos, interval,
        Math.min(config.skipFirst(), responses.get()));
    for (Worker w : workers) {
      b.add(w.part);
    }
    return b.build(config);
  }

  private void startWorkers(List<Worker> workers, List<Thread> threads, int upTo,
      CountDownLatch gate) {
    synchronized (lock) {
      for (int i = workers.size(); i < upTo; i++) {
        Worker w = new Worker(i, channels.get(i % channels.size()), gate);
        workers.add(w);
        running++;
        threads.add(Thread.ofPlatform().name("grpc-load-worker-" + i).daemon().start(w));
      }
    }
  }

  private final class Worker implements Runnable {
    final int id;
    final Channel channel;
    final CountDownLatch gate;
    final RunResult.Part part = new RunResult.Part();
    long t0;
    long stopAt;

    Worker(int id, Channel channel, CountDownLatch gate) {
      this.id = id;
      this.channel = channel;
      this.gate = gate;
    }

    @Override
    public void run() {
      try {
        gate.await();
        t0 = Runner.this.t0;
        stopAt = Runner.this.stopAt;
        loop();
      } catch (InterruptedException e) {
        stopped = true;
      } finally {
        synchronized (lock) {
          running--;
          lock.notifyAll();
        }
      }
    }

    private boolean on(long now) {
      return id < (int) config.concurrencySchedule().valueAt(now - t0);
    }

    private void loop() {
      Schedule rate = config.rateSchedule();
      // Whether this worker is on is a function of time, so a falling schedule stops workers
      // at the step: a worker never starts a call in a step that does not include it. A
      // worker that finds itself off after taking a request number hands the number back.
      while (!stopped) {
        long now = System.nanoTime();
        if (!on(now)) {
          return;
        }
        Long back = handedBack.poll();
        long k = back != null ? back : next.getAndIncrement();
        if (config.total() > 0 && k >= config.total()) {
          return;
        }
        if (rate != null) {
          long due = t0 + rate.dueNanos(k);
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
          now = System.nanoTime();
          if (!on(now)) {
            handedBack.add(k);
            return;
          }
        } else if (now >= stopAt) {
          return;
        }
        call(k, now);
      }
    }

    /** Call k; {@code checkedAt} is when this worker last found itself on. */
    private void call(long k, long checkedAt) {
      Status status;
      TransportPath path = null;
      long sent = 0;
      long received = 0;
      long startEpoch = 0;
      long start = System.nanoTime();
      if (config.keepDetails()) {
        Instant now = Instant.now();
        startEpoch = now.getEpochSecond() * 1_000_000_000L + now.getNano();
      }
      try {
        CallExecutor.Prepared prepared = executor.prepare(k, id);
        start = System.nanoTime();
        CallExecutor.Outcome o = executor.execute(channel, prepared, k, id);
        status = o.status();
        path = o.path();
        sent = o.sent();
        received = o.received();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        stopped = true;
        status = Status.CANCELLED.withDescription("interrupted");
      } catch (RuntimeException e) {
        status = Status.INTERNAL.withDescription("client: " + e.getMessage());
      }
      long end = System.nanoTime();
      long latency = Math.max(1, end - start);
      long since = start - t0;
      part.countLoadStep(config.rateSchedule() == null ? 0
          : config.rateSchedule().stepAt(since));
      part.countConcurrencyStep(config.concurrencySchedule().stepAt(checkedAt - t0));
      completed.incrementAndGet();
      // ghz's --skipFirst: the first N responses to arrive are left out of the statistics.
      if (responses.getAndIncrement() < config.skipFirst()) {
        return;
      }
      long expectedInterval = 0;
      if (config.rateSchedule() != null) {
        expectedInterval = (long) (config.concurrencySchedule().valueAt(since) * 1e9
            / config.rateSchedule().valueAt(since));
      }
      String error = status.isOk() ? null : "rpc error: code = " + status.getCode()
          + (status.getDescription() == null ? "" : " desc = " + status.getDescription());
      part.record(latency, expectedInterval, status.getCode(), error, path, sent, received,
          status.isOk() || config.countErrors());
      if (config.keepDetails()) {
        part.details.add(new Detail(k, id, startEpoch, latency, status.getCode(), error, path));
      }
    }
  }
}
