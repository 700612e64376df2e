package io.grpcshm.internal.proto;

import com.google.protobuf.ByteString;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.ExtensionRegistry;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import io.grpcshm.ProtobufParsing;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.hardening.Hardening;
import io.grpcshm.internal.proto.testing.DigestRequest;
import io.grpcshm.internal.proto.testing.Digests;
import io.grpcshm.internal.proto.testing.Everything;
import io.grpcshm.internal.proto.testing.KeepReply;
import io.grpcshm.internal.proto.testing.ParsingGrpc;
import io.grpcshm.internal.proto.testing.ServerState;
import io.grpcshm.internal.proto.testing.StateRequest;
import io.grpcshm.internal.proto.testing2.Legacy;
import io.grpcshm.internal.proto.testing2.LegacyServiceGrpc;
import io.grpcshm.internal.proto.testing2.Parsing2;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The server of {@link ProtobufParsingTest}, in its own JVM: generated services left exactly as
 * protoc made them, plus a DynamicMessage method and a byte-array method. Prints {@code PORT n},
 * serves until stdin closes. Arguments: the {@link ProtobufParsing} mode and the max inbound
 * message size. grpc's extension registry knows the proto2 extensions.
 */
public final class ParsingServerMain {
  static final String RAW_SERVICE = "grpcshm.transport.parsing.test.Raw";
  static final MethodDescriptor<DynamicMessage, DynamicMessage> DYNAMIC_ECHO =
      MethodDescriptor.<DynamicMessage, DynamicMessage>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(RAW_SERVICE, "Dynamic"))
          .setRequestMarshaller(ProtoUtils.marshaller(
              DynamicMessage.getDefaultInstance(Everything.getDescriptor())))
          .setResponseMarshaller(ProtoUtils.marshaller(
              DynamicMessage.getDefaultInstance(Everything.getDescriptor())))
          .build();
  static final MethodDescriptor<byte[], byte[]> BYTES_ECHO =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(RAW_SERVICE, "Bytes"))
          .setRequestMarshaller(Hardening.BYTES)
          .setResponseMarshaller(Hardening.BYTES)
          .build();

  private ParsingServerMain() {}

  public static void main(String[] args) throws Exception {
    ProtobufParsing mode = ProtobufParsing.valueOf(args[0]);
    int maxInbound = Integer.parseInt(args[1]);
    ExtensionRegistry registry = ExtensionRegistry.newInstance();
    Parsing2.registerAllExtensions(registry);
    ProtoUtils.setExtensionRegistry(registry);

    ServerServiceDefinition parsing = new ParsingImpl().bindService();
    ServerServiceDefinition legacy = new LegacyImpl().bindService();
    ServerServiceDefinition raw = ServerServiceDefinition.builder(RAW_SERVICE)
        .addMethod(DYNAMIC_ECHO, ServerCalls.asyncUnaryCall((DynamicMessage m, StreamObserver<
            DynamicMessage> out) -> {
          out.onNext(m);
          out.onCompleted();
        }))
        .addMethod(BYTES_ECHO, ServerCalls.asyncUnaryCall((byte[] m, StreamObserver<byte[]> out)
            -> {
          out.onNext(m);
          out.onCompleted();
        }))
        .build();
    // The request marshaller of every method as the application defined it.
    for (ServerServiceDefinition definition : List.of(parsing, legacy, raw)) {
      definition.getMethods().forEach(m -> ORIGINAL.put(
          m.getMethodDescriptor().getFullMethodName(),
          m.getMethodDescriptor().getRequestMarshaller()));
    }
    Server server = ShmServerBuilder.forPort(0)
        .protobufParsing(mode)
        .maxInboundMessageSize(maxInbound)
        .intercept(new MarshallerProbe())
        .addService(parsing)
        .addService(legacy)
        .addService(raw)
        .build()
        .start();
    ChildJvm.reportPortAndServe(server.getPort(),
        () -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
  }

  private static final Map<String, MethodDescriptor.Marshaller<?>> ORIGINAL =
      new ConcurrentHashMap<>();
  private static final Map<String, Boolean> SAW_ORIGINAL = new ConcurrentHashMap<>();

  /** Records, per method, whether the call's descriptor carries the application's marshaller. */
  private static final class MarshallerProbe implements ServerInterceptor {
    @Override
    public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(ServerCall<ReqT, RespT> call,
        Metadata headers, ServerCallHandler<ReqT, RespT> next) {
      MethodDescriptor<ReqT, RespT> method = call.getMethodDescriptor();
      SAW_ORIGINAL.put(method.getFullMethodName(),
          method.getRequestMarshaller() == ORIGINAL.get(method.getFullMethodName()));
      return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
          next.startCall(call, headers)) {};
    }
  }

  private static final class ParsingImpl extends ParsingGrpc.ParsingImplBase {
    /** Requests kept past their calls, while clients reuse the shared memory they came in. */
    private final List<Everything> kept = new CopyOnWriteArrayList<>();

    @Override
    public void echo(Everything request, StreamObserver<Everything> out) {
      out.onNext(request);
      out.onCompleted();
    }

    @Override
    public void keep(Everything request, StreamObserver<KeepReply> out) {
      kept.add(request);
      out.onNext(KeepReply.newBuilder().setKept(kept.size()).build());
      out.onCompleted();
    }

    @Override
    public void keptDigests(DigestRequest request, StreamObserver<Digests> out) {
      Digests.Builder digests = Digests.newBuilder();
      for (Everything message : kept) {
        digests.addSha256(sha256(message.toByteString()));
      }
      out.onNext(digests.build());
      out.onCompleted();
    }

    @Override
    public void state(StateRequest request, StreamObserver<ServerState> out) {
      if (request.getCollectGarbage()) {
        collectGarbage();
      }
      ReceiveBlockPool.Stats pool = ReceiveBlockPool.shared().stats();
      out.onNext(ServerState.newBuilder()
          .setCopiedOnce(CopyOnceMarshaller.COPIED_ONCE.sum())
          .setPoolLent(pool.lent())
          .setPoolReused(pool.reused())
          .setOriginalMarshaller(SAW_ORIGINAL.getOrDefault(request.getMethod(), false))
          .build());
      out.onCompleted();
    }

    @Override
    public StreamObserver<Everything> echoStream(StreamObserver<Everything> out) {
      return new StreamObserver<>() {
        @Override
        public void onNext(Everything message) {
          out.onNext(message);
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {
          out.onCompleted();
        }
      };
    }
  }

  private static final class LegacyImpl extends LegacyServiceGrpc.LegacyServiceImplBase {
    @Override
    public void echo(Legacy request, StreamObserver<Legacy> out) {
      out.onNext(request);
      out.onCompleted();
    }

    @Override
    public void inspect(Legacy request, StreamObserver<Legacy> out) {
      String seen = request.hasExtension(Parsing2.extNote)
          ? "extension:" + request.getExtension(Parsing2.extNote) : "unknown";
      out.onNext(Legacy.newBuilder().setId(request.getId()).setName(seen).build());
      out.onCompleted();
    }
  }

  /** Gives unreachable receive blocks a chance to return: a few collections, bounded. */
  static void collectGarbage() {
    long returned = ReceiveBlockPool.shared().stats().returned();
    for (int i = 0; i < 10 && ReceiveBlockPool.shared().stats().returned() == returned
        && ReceiveBlockPool.shared().lentBytes() > 0; i++) {
      System.gc();
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  static ByteString sha256(ByteString bytes) {
    try {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      digest.update(bytes.asReadOnlyByteBuffer());
      return ByteString.copyFrom(digest.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
