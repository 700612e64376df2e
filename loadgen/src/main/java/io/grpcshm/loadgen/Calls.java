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
    return ShmChannelBuilder.forTarget(target).usePlaintext().transportMode(mode)
        .maxInboundMessageSize(MAX_MESSAGE_BYTES).build();
  }

  /** A unary grpc method over DynamicMessages of the descriptor's types. */
  static MethodDescriptor<DynamicMessage, DynamicMessage> unary(
      com.google.protobuf.Descriptors.MethodDescriptor md) {
    if (md.isClientStreaming() || md.isServerStreaming()) {
      throw new IllegalArgumentException(md.getFullName() + " is a streaming method; this "
          + "version of grpc-load drives unary methods only");
    }
    return MethodDescriptor.<DynamicMessage, DynamicMessage>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(
            md.getService().getFullName(), md.getName()))
        .setRequestMarshaller(ProtoUtils.marshaller(
            DynamicMessage.getDefaultInstance(md.getInputType())))
        .setResponseMarshaller(ProtoUtils.marshaller(
            DynamicMessage.getDefaultInstance(md.getOutputType())))
        .build();
  }
}
