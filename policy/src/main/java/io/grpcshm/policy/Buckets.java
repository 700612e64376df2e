package io.grpcshm.policy;

/**
 * Bucketing of the features for the decision cache: log-scale buckets (an octave split into
 * 2^sub linear steps), so a cached decision covers calls within a few percent of each other.
 * Decisions are computed from each bucket's representative value, never from whichever call
 * happened to miss first, so they are deterministic per bucket.
 */
final class Buckets {
  private Buckets() {}

  /** Bucket of a non-negative integer value: 0..(64 << sub). Exact below 2^sub. */
  static int bucket(long v, int sub) {
    if (v < (1L << sub)) {
      return (int) Math.max(0, v);
    }
    int oct = 63 - Long.numberOfLeadingZeros(v);
    int frac = (int) ((v >>> (oct - sub)) & ((1 << sub) - 1));
    return ((oct - sub + 1) << sub) + frac;
  }

  /** The centre of a bucket. */
  static double representative(int b, int sub) {
    if (b < (1 << sub)) {
      return b;
    }
    int oct = (b >>> sub) + sub - 1;
    int frac = b & ((1 << sub) - 1);
    double lo = (double) (((1L << sub) + frac) << (oct - sub));
    double width = Math.scalb(1.0, oct - sub);
    return lo + (width - 1) / 2.0;
  }

  static final int SIZE_SUB = 2;
  static final int PF_SUB = 2;
  static final int LLC_SUB = 3;
  /** Fixed-point scales: pf in 1/16 faults per ms, LLC in 1/4 units. */
  static final double PF_SCALE = 16;
  static final double LLC_SCALE = 4;

  static int sizeBucket(long bytes) { return bucket(bytes, SIZE_SUB); }

  static int reuseBucket(int reuse) {
    return reuse < 0 ? 0 : reuse == 0 ? 1 : 2 + (31 - Integer.numberOfLeadingZeros(reuse));
  }

  static double reuseRepresentative(int b) {
    return b == 0 ? -1 : b == 1 ? 0 : (double) (1 << (b - 2));
  }

  static int pfBucket(double pf) { return Math.min(511, bucket((long) (pf * PF_SCALE), PF_SUB)); }

  static int llcBucket(double llc) {
    return Math.min(1023, bucket((long) (llc * LLC_SCALE), LLC_SUB));
  }

  static int streamsBucket(int n) { return Math.min(255, Math.max(0, n)); }

  /** Bits of {@link #key}; the caller may put more above them (the mode). */
  static final int KEY_BITS = 41;

  /** size 8 bits | reuse 6 | pf 9 | llc 10 | streams 8. */
  static long key(int size, int reuse, int pf, int llc, int streams) {
    return ((long) size << 33) | ((long) reuse << 27) | ((long) pf << 18) | ((long) llc << 8)
        | streams;
  }
}
