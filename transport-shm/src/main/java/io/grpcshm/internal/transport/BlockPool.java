package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * Allocator for one direction's payload pool, owned by the sending side (the receiver never
 * allocates; it only returns extents with RELEASE frames). Extents are runs of 4 KiB pages,
 * first-fit from the lowest address so that recently used, already-faulted pages are reused.
 *
 * <p>Every release is checked against the outstanding extents: a peer that frees an extent twice,
 * or one it was never lent, is caught here and its connection closed.
 */
final class BlockPool {
  static final int PAGE = 4096;

  private final int pages;
  /** Grows with the highest page used: an idle connection's pool costs no heap. */
  @GuardedBy("this") private final BitSet used = new BitSet();
  /** Allocated length in bytes of each outstanding extent, by start page. */
  @GuardedBy("this") private final Map<Integer, Integer> extentLength = new HashMap<>();
  @GuardedBy("this") private int usedPages;
  /**
   * Start pages of the extents lent as reply mailboxes (PROTOCOL.md §7.5): never extents a
   * DATA_BLOCK named, so a RELEASE of one is refused like any extent not lent.
   */
  @GuardedBy("this") private final BitSet mailboxPages = new BitSet();
  @GuardedBy("this") private int searchHint;

  BlockPool(long poolSize) {
    if (poolSize % PAGE != 0 || poolSize / PAGE > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("bad pool size " + poolSize);
    }
    this.pages = (int) (poolSize / PAGE);
  }

  /** Returns the byte offset of a free extent of at least {@code bytes}, or -1 if none. */
  synchronized long allocate(int bytes) {
    if (bytes <= 0) {
      throw new IllegalArgumentException("allocation of " + bytes + " bytes");
    }
    int need = (int) ((bytes + (long) PAGE - 1) / PAGE);
    if (need > pages - usedPages) {
      return -1;
    }
    int start = used.nextClearBit(0);
    while (start + need <= pages) {
      int nextUsed = used.nextSetBit(start);
      if (nextUsed < 0 || nextUsed - start >= need) {
        used.set(start, start + need);
        extentLength.put(start, bytes);
        usedPages += need;
        return (long) start * PAGE;
      }
      start = used.nextClearBit(nextUsed);
    }
    return -1;
  }

  /**
   * Frees the extent starting at {@code offset}. Returns false (and changes nothing) if no extent
   * starts there: a protocol violation when the offset came from the peer.
   */
  synchronized boolean free(long offset) {
    if (offset < 0 || offset % PAGE != 0 || offset / PAGE >= pages
        || mailboxPages.get((int) (offset / PAGE))) {
      return false;
    }
    return freeLocked((int) (offset / PAGE));
  }

  /** One page for a reply mailbox, or -1; only {@link #freeMailbox} gives it back. */
  synchronized long allocateMailbox() {
    long offset = allocate(PAGE);
    if (offset >= 0) {
      mailboxPages.set((int) (offset / PAGE));
    }
    return offset;
  }

  /** Frees a page {@link #allocateMailbox} returned; false if {@code offset} is not one. */
  synchronized boolean freeMailbox(long offset) {
    if (offset < 0 || offset % PAGE != 0 || !mailboxPages.get((int) (offset / PAGE))) {
      return false;
    }
    mailboxPages.clear((int) (offset / PAGE));
    return freeLocked((int) (offset / PAGE));
  }

  @GuardedBy("this")
  private boolean freeLocked(int start) {
    Integer bytes = extentLength.remove(start);
    if (bytes == null) {
      return false;
    }
    int n = (bytes + PAGE - 1) / PAGE;
    used.clear(start, start + n);
    usedPages -= n;
    return true;
  }

  /** Runs {@code action} if no extent is outstanding, excluding allocation meanwhile. */
  synchronized boolean runIfEmpty(Runnable action) {
    if (usedPages != 0) {
      return false;
    }
    action.run();
    return true;
  }

  synchronized int usedPages() {
    return usedPages;
  }

  int totalPages() {
    return pages;
  }
}
