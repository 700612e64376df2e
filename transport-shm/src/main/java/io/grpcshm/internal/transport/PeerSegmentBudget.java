package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpcshm.internal.nativeio.SharedMapping;
import java.util.HashMap;
import java.util.Map;

/**
 * The segments peers asked this process to map (SEGMENT_ATTACH), per peer uid and across all
 * connections. One connection is limited on its own (256 segments, its {@code maxSegmentBytes});
 * these limits stop a peer that opens many connections. Together with the process's mapping
 * budget ({@link SharedMapping#mappingLimit()}) no peer can exhaust the kernel's mapping limit,
 * which would abort the JVM. A refused segment costs the peer nothing but the zero-copy path: it
 * sends inline (PROTOCOL.md § 7.3, "Limits").
 */
final class PeerSegmentBudget {
  /** Share of the process's mapping budget peers' segments may take; connections keep the rest. */
  static final double PEER_SEGMENT_SHARE = 0.75;
  static final int MAX_SEGMENTS_PER_UID = Integer.getInteger("io.grpcshm.maxPeerSegmentsPerUid",
      Math.max(64, SharedMapping.mappingLimit() / 4));
  static final long MAX_BYTES_PER_UID = Long.getLong("io.grpcshm.maxPeerSegmentBytesPerUid",
      64L << 30);

  private static final Object LOCK = new Object();
  /** uid → {segments, bytes} mapped for that uid's peers now. */
  @GuardedBy("LOCK") private static final Map<Integer, long[]> USE = new HashMap<>();

  private PeerSegmentBudget() {}

  /** Reserves one segment of {@code bytes} for {@code uid}; null if granted, else the reason. */
  static String tryReserve(int uid, long bytes) {
    synchronized (LOCK) {
      if (!SharedMapping.hasRoom(1, PEER_SEGMENT_SHARE)) {
        return "the process holds " + SharedMapping.liveMappings() + " shared mappings (limit "
            + SharedMapping.mappingLimit() + ", peers' segments may take "
            + (int) (PEER_SEGMENT_SHARE * 100) + "%)";
      }
      long[] use = USE.computeIfAbsent(uid, u -> new long[2]);
      if (use[0] + 1 > MAX_SEGMENTS_PER_UID) {
        return "uid " + uid + " already has " + use[0] + " segments mapped (limit "
            + MAX_SEGMENTS_PER_UID + ")";
      }
      if (use[1] + bytes > MAX_BYTES_PER_UID) {
        return "uid " + uid + " already has " + use[1] + " bytes of segments mapped (limit "
            + MAX_BYTES_PER_UID + ")";
      }
      use[0]++;
      use[1] += bytes;
      return null;
    }
  }

  /** Gives back what {@link #tryReserve} granted (the segment was unmapped). */
  static void release(int uid, long bytes) {
    synchronized (LOCK) {
      long[] use = USE.get(uid);
      if (use == null) {
        return;
      }
      use[0]--;
      use[1] -= bytes;
      if (use[0] <= 0) {
        USE.remove(uid);
      }
    }
  }

  /** Segments mapped for {@code uid}'s peers now (tests). */
  static long segmentsOf(int uid) {
    synchronized (LOCK) {
      long[] use = USE.get(uid);
      return use == null ? 0 : use[0];
    }
  }
}
