package io.grpcshm.internal.frame;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The byte arrays of metadata names and values a connection receives again and again
 * ({@code grpc-status: 0}, the peer's {@code user-agent}), shared instead of allocated per
 * frame: a small direct-mapped cache keyed by content. grpc's {@code Metadata} never writes into
 * the arrays it is given, and grpc-java over Netty shares them the same way (HPACK's tables hand
 * out one array per table entry). Values of {@code -bin} names are never shared: grpc gives
 * those arrays to the application as they are.
 *
 * <p>Several threads may decode at once (a client's event loop and its blocking callers): a
 * slot's array is filled before it is published with a release store, and read with an acquire
 * load. A peer that never repeats itself only causes misses; the cache stays this size.
 */
public final class MetadataArrays {
  private static final int SLOTS = 32; // a power of two
  /** Longer entries are copied each time. */
  private static final int MAX_SHARED_LENGTH = 128;

  private final AtomicReferenceArray<byte[]> names = new AtomicReferenceArray<>(SLOTS);
  private final AtomicReferenceArray<byte[]> values = new AtomicReferenceArray<>(SLOTS);

  /** A name's bytes {@code array[from, from + length)}, already checked to be a valid name. */
  byte[] name(byte[] array, int from, int length) {
    return share(names, array, from, length);
  }

  /**
   * A value's bytes. {@code copy}: the name ends in "-bin" (the application gets the array), or
   * its value differs in every call ({@code grpc-timeout}) and would only push out the others.
   */
  byte[] value(byte[] array, int from, int length, boolean copy) {
    return copy
        ? Arrays.copyOfRange(array, from, from + length)
        : share(values, array, from, length);
  }

  private static byte[] share(
      AtomicReferenceArray<byte[]> cache, byte[] array, int from, int length) {
    if (length > MAX_SHARED_LENGTH) {
      return Arrays.copyOfRange(array, from, from + length);
    }
    int hash = length;
    for (int i = from; i < from + length; i++) {
      hash = 31 * hash + array[i];
    }
    int slot = (hash ^ (hash >>> 16)) & (SLOTS - 1);
    byte[] seen = cache.getAcquire(slot);
    if (seen != null && Arrays.equals(seen, 0, seen.length, array, from, from + length)) {
      return seen;
    }
    byte[] copy = Arrays.copyOfRange(array, from, from + length);
    cache.setRelease(slot, copy);
    return copy;
  }
}
