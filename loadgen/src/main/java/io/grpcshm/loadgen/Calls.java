package io.grpcshm.loadgen;

import com.google.protobuf.DynamicMessage;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.protobuf.ProtoUtils;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.TransportMode;
import java.util.Locale;

/** Channels and method descriptors shared by the commands. */
final class Calls {
  static final int MAX_MESSAGE_BYTES = 512 << 20;

  private Calls() {}

  static TransportMode mode(String transport) {
    return switch (transport.toLowerCase(Locale.ROOT)) {
      case "auto" -> TransportMode.AUTO;
      case "shm" -> TransportMode.SHM_ONLY;
      case "tcp" -> TransportMode.TCP_ONLY;
      default -> throw new IllegalArgumentException("--transport must be auto, shm or tcp, got '"
          + transport + "'");
    };
  }

  static ManagedChannel channel(String target, TransportMode mode) {
    return channel(target, mode, MAX_MESSAGE_BYTES);
  }

  static ManagedChannel channel(String target, TransportMode mode, int maxInboundMessageSize) {
    return ShmChannelBuilder.forTarget(target).usePlaintext().transportMode(mode)
        .maxInboundMessageSize(maxInboundMessageSize).build();
  }

  /** The grpc method (unary or streaming, as declared) over DynamicMessages of its types. */
  static MethodDescriptor<DynamicMessage, DynamicMessage> method(
      com.google.protobuf.Descriptors.MethodDescriptor md) {
    MethodDescriptor.MethodType type = md.isClientStreaming()
        ? (md.isServerStreaming() ? MethodDescriptor.MethodType.BIDI_STREAMING
            : MethodDescriptor.MethodType.CLIENT_STREAMING)
        : md.isServerStreaming() ? MethodDescriptor.MethodType.SERVER_STREAMING
            : MethodDescriptor.MethodType.UNARY;
    return MethodDescriptor.<DynamicMessage, DynamicMessage>newBuilder()
        .setType(type)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(
            md.getService().getFullName(), md.getName()))
        .setRequestMarshaller(ProtoUtils.marshaller(
            DynamicMessage.getDefaultInstance(md.getInputType())))
        .setResponseMarshaller(ProtoUtils.marshaller(
            DynamicMessage.getDefaultInstance(md.getOutputType())))
        .build();
  }
}
