package io.grpcshm.policy;

/**
 * What the transport tells the policy about concurrency. Called on the request path: return a
 * counter the transport already maintains (a volatile read), never compute anything here.
 */
@FunctionalInterface
public interface SignalSource {
  /** Active clients/streams sharing the data movers right now. */
  int activeStreams();

  /** A constant, for tools and tests. */
  static SignalSource fixed(int streams) {
    return () -> streams;
  }
}
