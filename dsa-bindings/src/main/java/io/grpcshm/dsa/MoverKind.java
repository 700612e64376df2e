package io.grpcshm.dsa;

/** The data movers this module knows. */
public enum MoverKind {
  /** Copy on the calling thread. */
  CPU,
  /** Worker threads speaking the DSA descriptor protocol: overlap bought with CPU cores. */
  SOFTWARE,
  /** Intel Data Streaming Accelerator through the idxd driver's user work queues. */
  DSA,
  /**
   * Copy split over the calling thread and helper threads (one per other core), waited for
   * before returning. Last, so the ordinals of the others (a model's encoding) stay put.
   */
  PARALLEL
}
