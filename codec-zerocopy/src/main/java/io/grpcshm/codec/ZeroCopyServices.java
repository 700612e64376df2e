package io.grpcshm.codec;

import com.google.protobuf.MessageLite;
import io.grpc.BindableService;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Applies {@link ZeroCopyMarshaller}s to generated services and stubs without touching generated
 * code: every protobuf marshaller (any {@link MethodDescriptor.PrototypeMarshaller} whose prototype
 * is a {@link MessageLite}, which is what {@code ProtoUtils}/{@code ProtoLiteUtils} return) is
 * replaced through {@link MethodDescriptor#toBuilder()}; other marshallers are left alone.
 *
 * <pre>{@code
 * server: ServerBuilder.forPort(p).addService(ZeroCopyServices.rewrite(new BlobServiceImpl()))
 * client: BlobServiceGrpc.newBlockingStub(channel).withInterceptors(ZeroCopyServices.clientInterceptor())
 * }</pre>
 */
public final class ZeroCopyServices {
  /** Rewritten descriptors, by original instance (MethodDescriptor has identity equality). */
  private static final Map<MethodDescriptor<?, ?>, MethodDescriptor<?, ?>> REWRITTEN =
      new ConcurrentHashMap<>();
  private static final ClientInterceptor INTERCEPTOR = new ClientInterceptor() {
    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
      return next.newCall(rewrite(method), callOptions);
    }
  };

  private ZeroCopyServices() {}

  /**
   * {@code method} with zero-copy marshallers for its protobuf request and response types. The
   * same instance is returned for the same {@code method}, so it is cheap per call.
   */
  @SuppressWarnings("unchecked")
  public static <ReqT, RespT> MethodDescriptor<ReqT, RespT> rewrite(
      MethodDescriptor<ReqT, RespT> method) {
    return (MethodDescriptor<ReqT, RespT>) REWRITTEN.computeIfAbsent(method,
        m -> rewriteUncached((MethodDescriptor<ReqT, RespT>) m));
  }

  private static <ReqT, RespT> MethodDescriptor<ReqT, RespT> rewriteUncached(
      MethodDescriptor<ReqT, RespT> method) {
    MethodDescriptor.Marshaller<ReqT> request = zeroCopy(method.getRequestMarshaller());
    MethodDescriptor.Marshaller<RespT> response = zeroCopy(method.getResponseMarshaller());
    if (request == method.getRequestMarshaller() && response == method.getResponseMarshaller()) {
      return method;
    }
    return method.toBuilder().setRequestMarshaller(request).setResponseMarshaller(response).build();
  }

  @SuppressWarnings({"unchecked", "rawtypes"})
  private static <T> MethodDescriptor.Marshaller<T> zeroCopy(MethodDescriptor.Marshaller<T> m) {
    if (m instanceof ZeroCopyMarshaller) {
      return m;
    }
    if (m instanceof MethodDescriptor.PrototypeMarshaller<T> p
        && p.getMessagePrototype() instanceof MessageLite prototype) {
      return (MethodDescriptor.Marshaller<T>) (MethodDescriptor.Marshaller) ZeroCopyMarshaller.of(
          prototype.getDefaultInstanceForType());
    }
    return m;
  }

  /** {@code service} with every method's protobuf marshallers replaced (handlers unchanged). */
  public static ServerServiceDefinition rewrite(ServerServiceDefinition service) {
    ServiceDescriptor original = service.getServiceDescriptor();
    ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
        .setSchemaDescriptor(original.getSchemaDescriptor());
    Map<String, MethodDescriptor<?, ?>> byName = new HashMap<>();
    for (MethodDescriptor<?, ?> method : original.getMethods()) {
      MethodDescriptor<?, ?> rewritten = rewrite(method);
      descriptor.addMethod(rewritten);
      byName.put(method.getFullMethodName(), rewritten);
    }
    // ServerServiceDefinition.Builder.build() insists on the very descriptor instances of the
    // ServiceDescriptor, so each handler is rebound to its rewritten descriptor.
    ServerServiceDefinition.Builder out = ServerServiceDefinition.builder(descriptor.build());
    for (ServerMethodDefinition<?, ?> definition : service.getMethods()) {
      out.addMethod(rebind(definition,
          byName.get(definition.getMethodDescriptor().getFullMethodName())));
    }
    return out.build();
  }

  /** {@code service.bindService()}, rewritten as by {@link #rewrite(ServerServiceDefinition)}. */
  public static ServerServiceDefinition rewrite(BindableService service) {
    return rewrite(service.bindService());
  }

  /** A client interceptor that makes every call of a stub or channel use zero-copy marshallers. */
  public static ClientInterceptor clientInterceptor() {
    return INTERCEPTOR;
  }

  @SuppressWarnings("unchecked")
  private static <ReqT, RespT> ServerMethodDefinition<ReqT, RespT> rebind(
      ServerMethodDefinition<ReqT, RespT> definition, MethodDescriptor<?, ?> rewritten) {
    if (rewritten == null) {
      rewritten = rewrite(definition.getMethodDescriptor());
    }
    return ServerMethodDefinition.create((MethodDescriptor<ReqT, RespT>) rewritten,
        definition.getServerCallHandler());
  }
}
