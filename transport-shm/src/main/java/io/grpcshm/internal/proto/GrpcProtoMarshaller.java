package io.grpcshm.internal.proto;

import com.google.protobuf.ExtensionRegistryLite;
import io.grpc.MethodDescriptor;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Recognises grpc's own protobuf marshaller ({@code ProtoLiteUtils.MessageMarshaller}: what
 * generated stubs, {@code ProtoUtils.marshaller} and {@code ProtoLiteUtils.marshaller} return) and
 * reads the two settings a replacement must honour: the marshaller's recursion limit and grpc's
 * global extension registry. grpc exposes neither, so they are read reflectively; where that is
 * not possible (another grpc version, a module that does not open them) the marshaller is left
 * alone.
 */
final class GrpcProtoMarshaller {
  private static final Logger log = Logger.getLogger(GrpcProtoMarshaller.class.getName());
  static final String CLASS_NAME = "io.grpc.protobuf.lite.ProtoLiteUtils$MessageMarshaller";
  private static final String DYNAMIC_MESSAGE = "com.google.protobuf.DynamicMessage";

  private record Access(VarHandle recursionLimit, VarHandle globalRegistry) {}

  /** Per marshaller class: how to read grpc's settings, or empty for any other marshaller. */
  private static final ClassValue<Optional<Access>> ACCESS = new ClassValue<>() {
    @Override
    protected Optional<Access> computeValue(Class<?> type) {
      if (!type.getName().equals(CLASS_NAME)) {
        return Optional.empty();
      }
      try {
        VarHandle limit = MethodHandles.privateLookupIn(type, MethodHandles.lookup())
            .findVarHandle(type, "recursionLimit", int.class);
        Class<?> utils = type.getDeclaringClass();
        VarHandle registry = MethodHandles.privateLookupIn(utils, MethodHandles.lookup())
            .findStaticVarHandle(utils, "globalRegistry", ExtensionRegistryLite.class);
        return Optional.of(new Access(limit, registry));
      } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
        log.log(Level.FINE, "grpc's protobuf marshaller not recognised; its methods keep it", e);
        return Optional.empty();
      }
    }
  };

  private final Access access;
  private final MethodDescriptor.Marshaller<?> marshaller;

  private GrpcProtoMarshaller(Access access, MethodDescriptor.Marshaller<?> marshaller) {
    this.access = access;
    this.marshaller = marshaller;
  }

  /**
   * {@code marshaller} if it is grpc's protobuf marshaller of a generated message type, else
   * null. Messages built from descriptors at run time ({@code DynamicMessage}) are left to grpc.
   */
  static GrpcProtoMarshaller of(MethodDescriptor.Marshaller<?> marshaller) {
    Optional<Access> access = ACCESS.get(marshaller.getClass());
    if (access.isEmpty()
        || !(marshaller instanceof MethodDescriptor.PrototypeMarshaller<?> prototyped)
        || prototyped.getMessagePrototype() == null
        || prototyped.getMessagePrototype().getClass().getName().equals(DYNAMIC_MESSAGE)) {
      return null;
    }
    return new GrpcProtoMarshaller(access.get(), marshaller);
  }

  /** Cheap test, per call: could {@link #of} accept {@code marshaller}? */
  static boolean isCandidate(MethodDescriptor.Marshaller<?> marshaller) {
    return ACCESS.get(marshaller.getClass()).isPresent();
  }

  /** The marshaller's recursion limit; negative: protobuf's default. */
  int recursionLimit() {
    return (int) access.recursionLimit().get(marshaller);
  }

  /** grpc's extension registry now ({@code ProtoLiteUtils.setExtensionRegistry} may change it). */
  ExtensionRegistryLite extensionRegistry() {
    return (ExtensionRegistryLite) access.globalRegistry().getVolatile();
  }
}
