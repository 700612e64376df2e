package io.grpcshm.internal.proto;

import com.google.common.collect.MapMaker;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpcshm.ProtobufParsing;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentMap;

/**
 * Applies a {@link ProtobufParsing} mode to the services a server adds and to the calls a channel
 * makes. Only methods whose marshallers are grpc's own protobuf marshaller change; everything
 * else, and everything in {@link ProtobufParsing#STOCK}, keeps its identity.
 */
public final class ProtoParsing {
  private static final String ZERO_COPY_SERVICES = "io.grpcshm.codec.ZeroCopyServices";

  /** Copy-once descriptors by original (identity; weak, for descriptors made per call). */
  private static final ConcurrentMap<MethodDescriptor<?, ?>, MethodDescriptor<?, ?>> COPY_ONCE =
      new MapMaker().weakKeys().makeMap();

  private static final ClientInterceptor COPY_ONCE_CALLS = new ClientInterceptor() {
    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
      return next.newCall(copyOnce(method), callOptions);
    }
  };

  private static final ClientInterceptor STOCK_CALLS = new ClientInterceptor() {
    @Override
    public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
        MethodDescriptor<ReqT, RespT> method, CallOptions callOptions, Channel next) {
      return next.newCall(method, callOptions);
    }
  };

  private ProtoParsing() {}

  /** Fails now, rather than at build, if {@code mode} needs a module that is not present. */
  public static void checkAvailable(ProtobufParsing mode) {
    if (mode == ProtobufParsing.ZERO_COPY) {
      ZeroCopy.services();
    }
  }

  /** {@code service} as the shared-memory server serves it in {@code mode}. */
  public static ServerServiceDefinition forServer(ServerServiceDefinition service,
      ProtobufParsing mode) {
    return switch (mode) {
      case STOCK -> service;
      case ZERO_COPY -> ZeroCopy.rewrite(service);
      case COPY_ONCE -> copyOnce(service);
    };
  }

  /**
   * The interceptor a channel installs innermost (next to the transport), so that stubs and
   * every interceptor the application adds see the descriptors they made.
   */
  public static ClientInterceptor forChannel(ProtobufParsing mode) {
    return switch (mode) {
      case STOCK -> STOCK_CALLS;
      case ZERO_COPY -> ZeroCopy.clientInterceptor();
      case COPY_ONCE -> COPY_ONCE_CALLS;
    };
  }

  /** {@code method} with copy-once marshallers for grpc's protobuf ones; cached per method. */
  @SuppressWarnings("unchecked")
  static <ReqT, RespT> MethodDescriptor<ReqT, RespT> copyOnce(
      MethodDescriptor<ReqT, RespT> method) {
    if (!GrpcProtoMarshaller.isCandidate(method.getRequestMarshaller())
        && !GrpcProtoMarshaller.isCandidate(method.getResponseMarshaller())) {
      return method; // not protobuf: no lookup
    }
    MethodDescriptor<?, ?> cached = COPY_ONCE.get(method);
    if (cached == null) {
      MethodDescriptor<ReqT, RespT> rewritten = rewrite(method);
      cached = COPY_ONCE.putIfAbsent(method, rewritten);
      if (cached == null) {
        cached = rewritten;
      }
    }
    return (MethodDescriptor<ReqT, RespT>) cached;
  }

  private static <ReqT, RespT> MethodDescriptor<ReqT, RespT> rewrite(
      MethodDescriptor<ReqT, RespT> method) {
    MethodDescriptor.Marshaller<ReqT> request = copyOnce(method.getRequestMarshaller());
    MethodDescriptor.Marshaller<RespT> response = copyOnce(method.getResponseMarshaller());
    if (request == method.getRequestMarshaller() && response == method.getResponseMarshaller()) {
      return method;
    }
    return method.toBuilder().setRequestMarshaller(request).setResponseMarshaller(response)
        .build();
  }

  private static <T> MethodDescriptor.Marshaller<T> copyOnce(
      MethodDescriptor.Marshaller<T> marshaller) {
    GrpcProtoMarshaller grpc = GrpcProtoMarshaller.of(marshaller);
    if (grpc == null) {
      return marshaller;
    }
    return new CopyOnceMarshaller<>((MethodDescriptor.PrototypeMarshaller<T>) marshaller, grpc);
  }

  private static ServerServiceDefinition copyOnce(ServerServiceDefinition service) {
    ServiceDescriptor original = service.getServiceDescriptor();
    Map<String, MethodDescriptor<?, ?>> byName = new HashMap<>();
    boolean changed = false;
    ServiceDescriptor.Builder descriptor = ServiceDescriptor.newBuilder(original.getName())
        .setSchemaDescriptor(original.getSchemaDescriptor());
    for (MethodDescriptor<?, ?> method : original.getMethods()) {
      MethodDescriptor<?, ?> rewritten = copyOnce(method);
      changed |= rewritten != method;
      descriptor.addMethod(rewritten);
      byName.put(method.getFullMethodName(), rewritten);
    }
    if (!changed) {
      return service;
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

  @SuppressWarnings("unchecked")
  private static <ReqT, RespT> ServerMethodDefinition<ReqT, RespT> rebind(
      ServerMethodDefinition<ReqT, RespT> definition, MethodDescriptor<?, ?> rewritten) {
    return ServerMethodDefinition.create((MethodDescriptor<ReqT, RespT>) rewritten,
        definition.getServerCallHandler());
  }

  /** codec-zerocopy's rewriting, reached by name: that module depends on this one. */
  private static final class ZeroCopy {
    private static volatile MethodHandle rewrite;
    private static volatile MethodHandle interceptor;

    static Class<?> services() {
      try {
        return Class.forName(ZERO_COPY_SERVICES, true, ProtoParsing.class.getClassLoader());
      } catch (ClassNotFoundException e) {
        throw new IllegalStateException("ProtobufParsing.ZERO_COPY needs io.grpcshm:codec-zerocopy"
            + " on the class path", e);
      }
    }

    static ServerServiceDefinition rewrite(ServerServiceDefinition service) {
      try {
        if (rewrite == null) {
          rewrite = MethodHandles.publicLookup().findStatic(services(), "rewrite",
              MethodType.methodType(ServerServiceDefinition.class,
                  ServerServiceDefinition.class));
        }
        return (ServerServiceDefinition) rewrite.invoke(service);
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new IllegalStateException("codec-zerocopy's ZeroCopyServices.rewrite failed", e);
      }
    }

    static ClientInterceptor clientInterceptor() {
      try {
        if (interceptor == null) {
          interceptor = MethodHandles.publicLookup().findStatic(services(), "clientInterceptor",
              MethodType.methodType(ClientInterceptor.class));
        }
        return (ClientInterceptor) interceptor.invoke();
      } catch (RuntimeException | Error e) {
        throw e;
      } catch (Throwable e) {
        throw new IllegalStateException("codec-zerocopy's ZeroCopyServices.clientInterceptor"
            + " failed", e);
      }
    }
  }
}
