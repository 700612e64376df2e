package io.grpcshm;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannelBuilder;
import io.grpc.ManagedChannelProvider;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Collection;
import java.util.List;

/**
 * Makes {@code Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())} return a
 * {@link ShmChannelBuilder} when this jar is on the class path. It outranks Netty's provider
 * (priority 5) and answers only insecure credentials, so TLS channels keep using Netty. Set the
 * system property {@value #ENABLED_PROPERTY} to {@code false} to switch it off.
 */
public final class ShmChannelProvider extends ManagedChannelProvider {
  public static final String ENABLED_PROPERTY = "io.grpcshm.provider.enabled";

  static boolean enabled() {
    return !"false".equalsIgnoreCase(System.getProperty(ENABLED_PROPERTY, "true"))
        && System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux");
  }

  @Override
  protected boolean isAvailable() {
    return enabled();
  }

  @Override
  protected int priority() {
    return 6;
  }

  @Override
  protected ManagedChannelBuilder<?> builderForAddress(String name, int port) {
    return ShmChannelBuilder.forAddress(name, port);
  }

  @Override
  protected ManagedChannelBuilder<?> builderForTarget(String target) {
    return ShmChannelBuilder.forTarget(target);
  }

  @Override
  protected NewChannelBuilderResult newChannelBuilder(String target, ChannelCredentials creds) {
    if (creds instanceof InsecureChannelCredentials) {
      return NewChannelBuilderResult.channelBuilder(
          ShmChannelBuilder.forTarget(target).usePlaintext());
    }
    return NewChannelBuilderResult.error("grpc-shm handles only insecure channel credentials");
  }

  @Override
  protected Collection<Class<? extends SocketAddress>> getSupportedSocketAddressTypes() {
    return List.of(InetSocketAddress.class);
  }
}
