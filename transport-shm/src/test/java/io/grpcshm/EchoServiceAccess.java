package io.grpcshm;

import io.grpc.MethodDescriptor;

/** Lets tests in internal packages use the echo service's descriptors. */
public final class EchoServiceAccess {
  private EchoServiceAccess() {}

  public static MethodDescriptor<byte[], byte[]> unary() {
    return EchoService.UNARY;
  }
}
