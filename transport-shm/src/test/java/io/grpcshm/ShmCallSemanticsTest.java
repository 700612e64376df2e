package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** gRPC semantics over shared memory, client and server in this JVM. */
class ShmCallSemanticsTest {
  private static final Metadata.Key<String> ASCII =
      Metadata.Key.of("x-echo", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<byte[]> BINARY =
      Metadata.Key.of("x-echo-bin", Metadata.BINARY_BYTE_MARSHALLER);

  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final AtomicReference<ServerCall<?, ?>> lastServerCall = new AtomicReference<>();

  @AfterEach
  void tearDown() throws Exception {
    for (ManagedChannel c : channels) {
      c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    for (Server s : servers) {
      s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** Echoes request headers as response headers and trailers; records the server call. */
  private final ServerInterceptor metadataEcho = new ServerInterceptor() {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
        ServerCallHandler<Q, R> next) {
      lastServerCall.set(call);
      return next.startCall(new io.grpc.ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        @Override
        public void sendHeaders(Metadata responseHeaders) {
          responseHeaders.merge(headers);
          super.sendHeaders(responseHeaders);
        }

        @Override
        public void close(Status status, Metadata trailers) {
          Metadata copy = new Metadata();
          copy.merge(headers);
          trailers.merge(copy);
          super.close(status, trailers);
        }
      }, headers);
    }
  };

  private Server startServer(ShmServerBuilder builder, ServerServiceDefinition service)
      throws Exception {
    Server s = builder.addService(ServerInterceptors.intercept(service, metadataEcho))
        .build().start();
    servers.add(s);
    return s;
  }

  private ManagedChannel channel(Server server, java.util.function.UnaryOperator<ShmChannelBuilder> f) {
    ManagedChannel c = f.apply(ShmChannelBuilder.forAddress("localhost", server.getPort())
        .usePlaintext().transportMode(TransportMode.SHM_ONLY)).build();
    channels.add(c);
    return c;
  }

  private static byte[] random(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }

  /**
   * A server's stream tracers see a call end before its client can see the status: census and
   * grpc's interop suite rely on a call's end being recorded before the next call on the same
   * connection starts, as Netty's one event loop per connection guarantees.
   */
  @Test
  void serverTracersRecordTheEndBeforeTheClientSeesTheStatus() throws Exception {
    java.util.concurrent.BlockingQueue<java.util.concurrent.atomic.AtomicReference<Status>> ends =
        new java.util.concurrent.LinkedBlockingQueue<>();
    Server server = startServer(ShmServerBuilder.forPort(0).addStreamTracerFactory(
        new io.grpc.ServerStreamTracer.Factory() {
          @Override
          public io.grpc.ServerStreamTracer newServerStreamTracer(String method,
              Metadata headers) {
            AtomicReference<Status> end = new AtomicReference<>();
            ends.add(end);
            return new io.grpc.ServerStreamTracer() {
              @Override
              public void streamClosed(Status status) {
                end.set(status);
              }
            };
          }
        }), ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.UNARY, ServerCalls.asyncUnaryCall((req, obs) -> {
          if (req.length == 0) {
            obs.onError(Status.FAILED_PRECONDITION.withDescription("empty").asRuntimeException());
          } else {
            obs.onNext(req);
            obs.onCompleted();
          }
        })).build());
    ManagedChannel ch = channel(server, b -> b);
    for (int i = 0; i < 300; i++) {
      boolean fail = i % 3 == 2;
      byte[] req = fail ? new byte[0] : new byte[] {(byte) i};
      Status.Code seen;
      try {
        ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT, req);
        seen = Status.Code.OK;
      } catch (StatusRuntimeException e) {
        seen = e.getStatus().getCode();
      }
      assertEquals(fail ? Status.Code.FAILED_PRECONDITION : Status.Code.OK, seen);
      AtomicReference<Status> end = ends.poll(10, TimeUnit.SECONDS);
      Status recorded = end == null ? null : end.get();
      assertTrue(recorded != null && recorded.getCode() == seen,
          "call " + i + ": server tracer's end when the client saw " + seen + ": " + recorded);
    }
  }

  @Test
  void allFourCallTypes() throws Exception {
    Server server = startServer(ShmServerBuilder.forPort(0), EchoService.definition());
    ManagedChannel ch = channel(server, b -> b);
    byte[] req = random(100, 1);
    assertArrayEquals(req, ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT, req));

    byte[] five = {5, 1, 2};
    Iterator<byte[]> it = ClientCalls.blockingServerStreamingCall(ch, EchoService.SERVER_STREAM,
        CallOptions.DEFAULT, five);
    int n = 0;
    while (it.hasNext()) {
      assertArrayEquals(five, it.next());
      n++;
    }
    assertEquals(5, n);

    CollectingObserver client = new CollectingObserver();
    StreamObserver<byte[]> up = ClientCalls.asyncClientStreamingCall(
        ch.newCall(EchoService.CLIENT_STREAM, CallOptions.DEFAULT), client);
    up.onNext(new byte[] {1, 2});
    up.onNext(new byte[] {3});
    up.onCompleted();
    assertTrue(client.done.await(10, TimeUnit.SECONDS));
    assertArrayEquals(new byte[] {1, 2, 3}, client.values.get(0));

    CollectingObserver bidi = new CollectingObserver();
    StreamObserver<byte[]> bidiUp = ClientCalls.asyncBidiStreamingCall(
        ch.newCall(EchoService.BIDI, CallOptions.DEFAULT), bidi);
    for (int i = 0; i < 10; i++) {
      bidiUp.onNext(random(i * 1000, i));
    }
    bidiUp.onCompleted();
    assertTrue(bidi.done.await(10, TimeUnit.SECONDS));
    assertEquals(10, bidi.values.size());
    for (int i = 0; i < 10; i++) {
      assertArrayEquals(random(i * 1000, i), bidi.values.get(i));
    }
  }

  @Test
  void asciiAndBinaryMetadataBothWays() throws Exception {
    Server server = startServer(ShmServerBuilder.forPort(0), EchoService.definition());
    ManagedChannel ch = channel(server, b -> b.userAgent("my-app/2"));
    Metadata headers = new Metadata();
    headers.put(ASCII, "hello, world");
    byte[] bin = {0, (byte) 0x80, (byte) 0xff, '\n', '\r', 0};
    headers.put(BINARY, bin);
    AtomicReference<Metadata> responseHeaders = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    io.grpc.Channel intercepted = io.grpc.ClientInterceptors.intercept(ch,
        MetadataUtils.newAttachHeadersInterceptor(headers),
        MetadataUtils.newCaptureMetadataInterceptor(responseHeaders, trailers));
    Metadata.Key<String> userAgent = Metadata.Key.of("user-agent", Metadata.ASCII_STRING_MARSHALLER);
    // Twice: the second call's names and values are decoded from the connection's shared arrays.
    for (int call = 0; call < 2; call++) {
      ClientCalls.blockingUnaryCall(intercepted, EchoService.UNARY, CallOptions.DEFAULT, new byte[] {1});
      assertEquals("hello, world", responseHeaders.get().get(ASCII));
      assertEquals("hello, world", trailers.get().get(ASCII));
      assertArrayEquals(bin, responseHeaders.get().get(BINARY));
      assertArrayEquals(bin, trailers.get().get(BINARY));
      // The server saw the application's user-agent first, then ours (echoed back here).
      String agent = responseHeaders.get().get(userAgent);
      assertTrue(agent != null && agent.startsWith("my-app/2 grpc-java-shm/"), agent);
    }
  }

  @Test
  void payloadsAcrossEveryStorageBoundary() throws Exception {
    // Small pool and segment cap so that payloads take each path: inline through the ring, pool
    // extents, persistent segments, and inline chunks when shared memory is exhausted.
    Server server = startServer(ShmServerBuilder.forPort(0)
        .sharedMemorySizes(1 << 16, 1 << 20, 8 << 20).maxInboundMessageSize(32 << 20),
        EchoService.definition());
    ManagedChannel ch = channel(server, b -> b.sharedMemorySizes(1 << 16, 1 << 20, 8 << 20)
        .maxInboundMessageSize(32 << 20));
    int[] sizes = {0, 1, 2043, 2044, 2048, 4091, 4096, 8190, 65_536, 1 << 20, (1 << 20) + 1,
        3 << 20, 7 << 20, 12 << 20, 20 << 20};
    for (int size : sizes) {
      byte[] req = random(size, size);
      byte[] resp = ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT, req);
      assertArrayEquals(req, resp, "payload of " + size + " bytes");
    }
  }

  @Test
  void manyConcurrentStreamsFromManyThreadsWithChecksums() throws Exception {
    Server server = startServer(ShmServerBuilder.forPort(0), EchoService.definition());
    ManagedChannel ch = channel(server, b -> b);
    int threads = 8;
    int streamsPerThread = 8; // 64 concurrent bidi streams in all
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        final int thread = t;
        results.add(pool.submit(() -> {
          List<CollectingObserver> observers = new ArrayList<>();
          List<StreamObserver<byte[]>> uplinks = new ArrayList<>();
          List<List<byte[]>> sent = new ArrayList<>();
          for (int s = 0; s < streamsPerThread; s++) {
            CollectingObserver o = new CollectingObserver();
            observers.add(o);
            uplinks.add(ClientCalls.asyncBidiStreamingCall(
                ch.newCall(EchoService.BIDI, CallOptions.DEFAULT), o));
            sent.add(new ArrayList<>());
          }
          Random r = new Random(thread);
          for (int m = 0; m < 20; m++) {
            for (int s = 0; s < streamsPerThread; s++) {
              int size = r.nextInt(4) == 0 ? r.nextInt(200_000) : r.nextInt(2_000);
              byte[] msg = random(size, r.nextLong());
              sent.get(s).add(msg);
              uplinks.get(s).onNext(msg);
            }
          }
          uplinks.forEach(StreamObserver::onCompleted);
          int verified = 0;
          for (int s = 0; s < streamsPerThread; s++) {
            CollectingObserver o = observers.get(s);
            if (!o.done.await(60, TimeUnit.SECONDS) || o.error.get() != null) {
              throw new AssertionError("stream failed", o.error.get());
            }
            assertEquals(sent.get(s).size(), o.values.size());
            for (int m = 0; m < o.values.size(); m++) {
              assertEquals(crc(sent.get(s).get(m)), crc(o.values.get(m)));
              verified++;
            }
          }
          return verified;
        }));
      }
      int total = 0;
      for (Future<Integer> f : results) {
        total += f.get(120, TimeUnit.SECONDS);
      }
      assertEquals(threads * streamsPerThread * 20, total);
    } finally {
      pool.shutdownNow();
    }
  }

  private static long crc(byte[] b) {
    CRC32 c = new CRC32();
    c.update(b);
    return c.getValue() ^ ((long) b.length << 32);
  }

  @Test
  void slowConsumerBackpressureKeepsSenderBounded() throws Exception {
    AtomicInteger sentBeforeNotReady = new AtomicInteger(-1);
    CountDownLatch serverDone = new CountDownLatch(1);
    int messageSize = 64 * 1024;
    int total = 400; // 25 MiB in all, far beyond the stream window
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.SERVER_STREAM, ServerCalls.asyncServerStreamingCall((req, obs) -> {
          ServerCallStreamObserver<byte[]> out = (ServerCallStreamObserver<byte[]>) obs;
          AtomicInteger sent = new AtomicInteger();
          out.setOnReadyHandler(() -> {
            while (out.isReady() && sent.get() < total) {
              out.onNext(new byte[messageSize]);
              sent.incrementAndGet();
            }
            if (sent.get() < total && sentBeforeNotReady.get() < 0) {
              sentBeforeNotReady.set(sent.get());
            }
            if (sent.get() == total && serverDone.getCount() > 0) {
              serverDone.countDown();
              out.onCompleted();
            }
          });
        }))
        .build();
    Server server = startServer(ShmServerBuilder.forPort(0), service);
    ManagedChannel ch = channel(server, b -> b.streamWindow(1 << 20));
    ClientCall<byte[], byte[]> call = ch.newCall(EchoService.SERVER_STREAM, CallOptions.DEFAULT);
    AtomicInteger received = new AtomicInteger();
    CountDownLatch closed = new CountDownLatch(1);
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onMessage(byte[] message) {
        received.incrementAndGet();
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        closed.countDown();
      }
    }, new Metadata());
    call.request(1);
    call.sendMessage(new byte[] {1});
    call.halfClose();
    // The client asked for one message only: the server must stop at roughly one window.
    long deadline = System.currentTimeMillis() + 5000;
    while (sentBeforeNotReady.get() < 0 && System.currentTimeMillis() < deadline) {
      Thread.sleep(10);
    }
    int window = (1 << 20) / (messageSize + 5);
    assertTrue(sentBeforeNotReady.get() > 0, "server saw backpressure");
    assertTrue(sentBeforeNotReady.get() <= window + 4,
        "sender stopped after " + sentBeforeNotReady.get() + " messages (window ~" + window + ")");
    long until = System.currentTimeMillis() + 5000;
    while (received.get() < 1 && System.currentTimeMillis() < until) {
      Thread.sleep(5);
    }
    Thread.sleep(50); // anything beyond the one requested message would arrive now
    assertEquals(1, received.get(), "the client asked for one message only");
    call.request(total);
    assertTrue(closed.await(30, TimeUnit.SECONDS));
    assertEquals(total, received.get());
  }

  @Test
  void transportAttributesAndPath() throws Exception {
    Server server = startServer(ShmServerBuilder.forPort(0), EchoService.definition());
    EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
    ManagedChannel ch = channel(server, b -> b.intercept(capture));
    ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT, new byte[] {1});
    io.grpc.Attributes client = capture.last.get();
    assertEquals(TransportPath.SHARED_MEMORY, TransportPath.of(client));
    assertInstanceOf(InetSocketAddress.class, client.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
    ShmAddress clientLocal = assertInstanceOf(ShmAddress.class,
        client.get(Grpc.TRANSPORT_ATTR_LOCAL_ADDR));
    assertEquals(ProcessHandle.current().pid(), clientLocal.pid());
    io.grpc.Attributes serverAttrs = lastServerCall.get().getAttributes();
    assertEquals(TransportPath.SHARED_MEMORY, TransportPath.of(serverAttrs));
    ShmAddress peer = assertInstanceOf(ShmAddress.class,
        serverAttrs.get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR));
    assertEquals(ProcessHandle.current().pid(), peer.pid());
    assertEquals("@grpc-shm/*/" + server.getPort(), peer.rendezvous());
  }

  @Test
  void gzipCompressionBothWays() throws Exception {
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.UNARY, ServerCalls.asyncUnaryCall((req, obs) -> {
          ((ServerCallStreamObserver<byte[]>) obs).setCompression("gzip");
          obs.onNext(req);
          obs.onCompleted();
        }))
        .build();
    Server server = startServer(ShmServerBuilder.forPort(0), service);
    ManagedChannel ch = channel(server, b -> b);
    byte[] req = new byte[1 << 20];
    Arrays.fill(req, (byte) 'z');
    byte[] resp = ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
        CallOptions.DEFAULT.withCompression("gzip"), req);
    assertArrayEquals(req, resp);
  }

  @Test
  void deadlinesPropagateToTheServer() throws Exception {
    AtomicReference<io.grpc.Deadline> seen = new AtomicReference<>();
    CountDownLatch handlerRan = new CountDownLatch(1);
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.UNARY, ServerCalls.asyncUnaryCall((req, obs) -> {
          seen.set(io.grpc.Context.current().getDeadline());
          handlerRan.countDown();
          // Never answer: the deadline must end the call.
        }))
        .build();
    Server server = startServer(ShmServerBuilder.forPort(0), service);
    ManagedChannel ch = channel(server, b -> b);
    // Long enough for the first call to connect on a busy machine and reach the handler.
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
            CallOptions.DEFAULT.withDeadlineAfter(3, TimeUnit.SECONDS), new byte[] {1}));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
    // The handler runs on the server's executor, unordered with the client's own timer.
    assertTrue(handlerRan.await(10, TimeUnit.SECONDS), "the call reached the server");
    assertTrue(seen.get() != null && seen.get().timeRemaining(TimeUnit.SECONDS) < 3,
        "the server saw the client's deadline: " + seen.get());
  }

  @Test
  void messageSizeLimitsFailTheCallNotTheConnection() throws Exception {
    Server server = startServer(ShmServerBuilder.forPort(0).maxInboundMessageSize(1000),
        EchoService.definition());
    ManagedChannel ch = channel(server, b -> b.maxInboundMessageSize(500));
    StatusRuntimeException tooBigForServer = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT,
            new byte[2000]));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, tooBigForServer.getStatus().getCode());
    StatusRuntimeException tooBigForClient = assertThrows(StatusRuntimeException.class,
        () -> ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT,
            new byte[800]));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, tooBigForClient.getStatus().getCode());
    assertArrayEquals(new byte[] {7}, ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
        CallOptions.DEFAULT, new byte[] {7}), "connection still serves other calls");
  }

  @Test
  void gracefulServerShutdownLetsInFlightCallsFinish() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.UNARY, ServerCalls.asyncUnaryCall((req, obs) -> {
          started.countDown();
          try {
            release.await(10, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          obs.onNext(req);
          obs.onCompleted();
        }))
        .build();
    Server server = startServer(ShmServerBuilder.forPort(0), service);
    ManagedChannel ch = channel(server, b -> b);
    Future<byte[]> inFlight = Executors.newSingleThreadExecutor().submit(() ->
        ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT, new byte[] {3}));
    assertTrue(started.await(10, TimeUnit.SECONDS));
    server.shutdown();
    assertThrows(StatusRuntimeException.class, () -> ClientCalls.blockingUnaryCall(ch,
        EchoService.UNARY, CallOptions.DEFAULT.withDeadlineAfter(2, TimeUnit.SECONDS),
        new byte[] {4}), "new calls are refused once shutdown began");
    release.countDown();
    assertArrayEquals(new byte[] {3}, inFlight.get(10, TimeUnit.SECONDS));
    assertTrue(server.awaitTermination(10, TimeUnit.SECONDS));
  }

  @Test
  void shutdownNowFailsInFlightCalls() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.UNARY, ServerCalls.asyncUnaryCall((req, obs) -> started.countDown()))
        .build();
    Server server = startServer(ShmServerBuilder.forPort(0), service);
    ManagedChannel ch = channel(server, b -> b);
    Future<?> inFlight = Executors.newSingleThreadExecutor().submit(() ->
        ClientCalls.blockingUnaryCall(ch, EchoService.UNARY, CallOptions.DEFAULT, new byte[] {3}));
    assertTrue(started.await(10, TimeUnit.SECONDS));
    server.shutdownNow();
    java.util.concurrent.ExecutionException e = assertThrows(
        java.util.concurrent.ExecutionException.class, () -> inFlight.get(5, TimeUnit.SECONDS));
    StatusRuntimeException sre = assertInstanceOf(StatusRuntimeException.class, e.getCause());
    assertEquals(Status.Code.UNAVAILABLE, sre.getStatus().getCode());
    assertTrue(server.awaitTermination(10, TimeUnit.SECONDS));
  }

  @Test
  void cancellationFromTheClientReachesTheServer() throws Exception {
    CountDownLatch cancelled = new CountDownLatch(1);
    CountDownLatch started = new CountDownLatch(1);
    ServerServiceDefinition service = ServerServiceDefinition.builder(EchoService.SERVICE)
        .addMethod(EchoService.BIDI, ServerCalls.asyncBidiStreamingCall(obs -> {
          ((ServerCallStreamObserver<byte[]>) obs).setOnCancelHandler(cancelled::countDown);
          started.countDown();
          return new CollectingObserver();
        }))
        .build();
    Server server = startServer(ShmServerBuilder.forPort(0), service);
    ManagedChannel ch = channel(server, b -> b);
    ClientCall<byte[], byte[]> call = ch.newCall(EchoService.BIDI, CallOptions.DEFAULT);
    CountDownLatch closed = new CountDownLatch(1);
    AtomicReference<Status> status = new AtomicReference<>();
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onClose(Status s, Metadata trailers) {
        status.set(s);
        closed.countDown();
      }
    }, new Metadata());
    call.sendMessage(new byte[] {1});
    // Cancel once the server has the call: cancelled earlier, it never reaches the server.
    assertTrue(started.await(30, TimeUnit.SECONDS), "the call reached the server");
    call.cancel("test cancels", null);
    assertTrue(closed.await(5, TimeUnit.SECONDS));
    assertEquals(Status.Code.CANCELLED, status.get().getCode());
    assertTrue(cancelled.await(5, TimeUnit.SECONDS), "server saw the cancellation");
  }

  /** Collects a stream's messages. */
  static final class CollectingObserver implements StreamObserver<byte[]> {
    final List<byte[]> values = java.util.Collections.synchronizedList(new ArrayList<>());
    final AtomicReference<Throwable> error = new AtomicReference<>();
    final CountDownLatch done = new CountDownLatch(1);

    @Override
    public void onNext(byte[] value) {
      values.add(value);
    }

    @Override
    public void onError(Throwable t) {
      error.set(t);
      done.countDown();
    }

    @Override
    public void onCompleted() {
      done.countDown();
    }
  }
}
