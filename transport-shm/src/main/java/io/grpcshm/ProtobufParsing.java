package io.grpcshm;

/**
 * How a server or channel built by grpc-shm parses protobuf messages of methods that use grpc's
 * own protobuf marshaller (generated stubs, {@code ProtoUtils.marshaller}, {@code
 * ProtoLiteUtils.marshaller}). Set with {@link ShmServerBuilder#protobufParsing} and {@link
 * ShmChannelBuilder#protobufParsing}; other marshallers are never touched.
 */
public enum ProtobufParsing {
  /**
   * The default. A message larger than 4 MiB that arrived over shared memory in one piece is
   * copied once, straight from shared memory into one heap array of its size, and parsed from
   * there; its {@code bytes} fields are views of that array (no second copy). The message owns
   * its memory like any parsed message: nothing to release, valid forever. Smaller messages,
   * messages received over TCP and everything else are parsed by grpc's marshaller unchanged.
   * A {@code bytes} field kept after the message is dropped keeps that array reachable;
   * {@code ByteString.copyFrom(field)} keeps only the field.
   */
  COPY_ONCE,
  /** grpc's marshallers exactly as the generated code made them. */
  STOCK,
  /**
   * codec-zerocopy's aliasing marshaller ({@code io.grpcshm.codec.ZeroCopyServices}, which must
   * be on the class path): large {@code bytes} fields are views of shared memory itself, with
   * that codec's release contract ({@code ZeroCopyMessage}; docs/CODEC.md). On a server only the
   * shared-memory path uses it; on a channel every call does (over TCP it copies).
   */
  ZERO_COPY
}
