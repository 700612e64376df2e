package io.grpcshm.policy;

/**
 * The per-call signals the policy decides on (thesis Table 5.1).
 *
 * @param payloadBytes bytes this call moves ({@code data_size})
 * @param reuseWindow the application's hint of how soon the receiver reads the data again:
 *     {@link #REUSE_IMMEDIATE} (read right after the copy), a positive distance in calls, or
 *     {@link #REUSE_UNKNOWN}
 * @param pageFaultRate page faults per millisecond in this process (from /proc/self/stat deltas)
 * @param llcPressure last-level-cache pressure; its unit depends on {@link Signals#llcSource()}
 * @param activeStreams active clients/streams as reported by the transport
 */
public record CallFeatures(long payloadBytes, int reuseWindow, double pageFaultRate,
    double llcPressure, int activeStreams) {
  /** The application gave no hint. */
  public static final int REUSE_UNKNOWN = io.grpcshm.dsa.MoverPolicy.REUSE_UNKNOWN;
  /** The receiver reads the data right after the copy. */
  public static final int REUSE_IMMEDIATE = 0;

  /** Why these features cannot be fed to the model, or null if they can. */
  public String problem() {
    if (payloadBytes < 0) {
      return "negative payload size " + payloadBytes;
    }
    if (reuseWindow < REUSE_UNKNOWN) {
      return "reuse window " + reuseWindow + " < -1";
    }
    if (!Double.isFinite(pageFaultRate) || pageFaultRate < 0) {
      return "page-fault rate is " + pageFaultRate;
    }
    if (!Double.isFinite(llcPressure) || llcPressure < 0) {
      return "LLC pressure is " + llcPressure;
    }
    if (activeStreams < 0) {
      return "active streams " + activeStreams + " < 0";
    }
    return null;
  }
}
