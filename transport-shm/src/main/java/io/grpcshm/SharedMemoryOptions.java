package io.grpcshm;

import io.grpcshm.internal.proto.ProtoParsing;
import io.grpcshm.internal.transport.ShmTransportConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * The shared-memory settings of {@link ShmChannelBuilder} and {@link ShmServerBuilder}, checked
 * and kept here once; each builder's public methods delegate to these and return the builder.
 */
final class SharedMemoryOptions {
  private ShmTransportConfig config = ShmTransportConfig.defaults();
  private String rendezvous;
  private Path rendezvousDirectory = ShmAddress.configuredDirectory();
  private ProtobufParsing protobufParsing = ProtobufParsing.COPY_ONCE;

  ShmTransportConfig config() {
    return config;
  }

  /** The fixed rendezvous name, or null to derive it from the TCP address. */
  String rendezvous() {
    return rendezvous;
  }

  Path rendezvousDirectory() {
    return rendezvousDirectory;
  }

  ProtobufParsing protobufParsing() {
    return protobufParsing;
  }

  void rendezvous(String name) {
    rendezvous = Objects.requireNonNull(name, "name");
  }

  void rendezvousDirectory(Path directory) {
    rendezvousDirectory = directory;
  }

  void protobufParsing(ProtobufParsing mode) {
    ProtoParsing.checkAvailable(Objects.requireNonNull(mode, "mode"));
    protobufParsing = mode;
  }

  void peerPolicy(PeerAuthorizationPolicy policy) {
    config = config.toBuilder().peerPolicy(policy).build();
  }

  void idleStrategy(IdleStrategy strategy) {
    config = config.toBuilder().idleStrategy(strategy).build();
  }

  void sizes(int ringCapacity, long poolSize, long maxSegmentBytes) {
    config = config.toBuilder().sizes(ringCapacity, poolSize, maxSegmentBytes).build();
  }

  void idleMemoryTrim(Duration delay) {
    config = config.toBuilder().idleTrimMillis(delay.toMillis()).build();
  }

  void streamWindow(int bytes) {
    config = config.toBuilder().streamWindow(bytes).build();
  }

  void dataMovement(DataMovement movement) {
    config = config.toBuilder().movement(movement).build();
  }

  void maxInboundMessageSize(int bytes) {
    config = config.toBuilder().maxInboundMessageSize(bytes).build();
  }

  void maxInboundMetadataSize(int bytes) {
    config = config.toBuilder().maxInboundMetadataSize(bytes).build();
  }

  void handshakeTimeout(long timeout, TimeUnit unit) {
    config = config.toBuilder().handshakeTimeoutMillis(Math.max(1, unit.toMillis(timeout))).build();
  }

  void maxConnectionsPerUid(int connections) {
    config = config.toBuilder().maxConnectionsPerUid(connections).build();
  }

  void maxConcurrentCallsPerConnection(int calls) {
    config = config.toBuilder().maxConcurrentCallsPerConnection(calls).build();
  }
}
