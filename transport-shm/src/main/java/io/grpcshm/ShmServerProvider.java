package io.grpcshm;

import io.grpc.InsecureServerCredentials;
import io.grpc.ServerBuilder;
import io.grpc.ServerCredentials;
import io.grpc.ServerProvider;

/**
 * Makes {@code Grpc.newServerBuilderForPort(port, InsecureServerCredentials.create())} and
 * {@code ServerBuilder.forPort(port)} return a {@link ShmServerBuilder}. Switched off with the
 * same system property as {@link ShmChannelProvider}.
 */
public final class ShmServerProvider extends ServerProvider {
  @Override
  protected boolean isAvailable() {
    return ShmChannelProvider.enabled();
  }

  @Override
  protected int priority() {
    return 6;
  }

  @Override
  protected ServerBuilder<?> builderForPort(int port) {
    return ShmServerBuilder.forPort(port);
  }

  @Override
  protected NewServerBuilderResult newServerBuilderForPort(int port, ServerCredentials creds) {
    if (creds instanceof InsecureServerCredentials) {
      return NewServerBuilderResult.serverBuilder(ShmServerBuilder.forPort(port));
    }
    return NewServerBuilderResult.error("grpc-shm handles only insecure server credentials");
  }
}
