package io.grpcshm.internal.frame;

/**
 * A reply mailbox (docs/PROTOCOL.md §7.5): one 4 KiB page of the client's payload pool that a
 * blocking unary call lends the server for its whole answer, so the server can write the answer's
 * records there and wake the waiting caller itself, instead of the client's event loop reading
 * them off the ring and handing them to the caller's thread.
 *
 * <pre>
 *   0  state    u32  one of the STATE_ constants; the futex word the caller sleeps on
 *   4  length   u32  bytes of records that follow (valid once state is FILLED)
 *   8  records       ring records (FrameLayout header + body), packed with no padding
 * </pre>
 *
 * <p>The client sets the state to {@link #STATE_WAITING} before REQUEST_HEADERS names the page
 * (flag {@link #FLAG_REPLY_MAILBOX}, page index in the header's reserved u16). The server writes
 * only this page and only until it stores a final state ({@link #STATE_FILLED},
 * {@link #STATE_ON_RING}, {@link #STATE_RELEASED}); of it, it reads only the state word, to
 * compare. The client frees the page only once it has seen a final state from the server.
 */
public final class MailboxLayout {
  private MailboxLayout() {}

  /** The page: a mailbox is exactly one pool page, at a page-aligned offset. */
  public static final int SIZE = 4096;
  public static final int STATE_OFFSET = 0;
  public static final int LENGTH_OFFSET = 4;
  public static final int RECORDS_OFFSET = 8;
  /** Most bytes of records one mailbox holds. */
  public static final int RECORDS_CAPACITY = SIZE - RECORDS_OFFSET;
  /** Largest page index the reserved u16 can name (the first 256 MiB of the pool). */
  public static final int MAX_PAGE_INDEX = 0xffff;

  /** REQUEST_HEADERS flag: the reserved u16 names a reply mailbox page of the client's pool. */
  public static final int FLAG_REPLY_MAILBOX = 0x80;

  /** Client, before sending: no answer yet, and the caller is not asleep. */
  public static final int STATE_WAITING = 0;
  /** Server: the whole answer is in the records; the caller reads them and frees the page. */
  public static final int STATE_FILLED = 1;
  /**
   * Server: the answer did not fit (or could not go) here and travels on the ring instead, whole,
   * in order; nothing in the page is valid.
   */
  public static final int STATE_ON_RING = 2;
  /** Server: the stream ended without an answer here (refused, reset by the client). */
  public static final int STATE_RELEASED = 3;
  /**
   * Client: it no longer waits on the page (the call ended, its wait budget ran out, an interrupt,
   * an answer on the ring): the server sends the answer on the ring and stores ON_RING (or
   * RELEASED). The page waits for one of the server's final states before it is reused.
   */
  public static final int STATE_ABANDONED = 4;
  /** Client: the caller is asleep on the word; the server's final store must FUTEX_WAKE it. */
  public static final int STATE_SLEEPING = 5;

  /** Whether the server wrote its last word to this page (it will not touch it again). */
  public static boolean isServerFinal(int state) {
    return state == STATE_FILLED || state == STATE_ON_RING || state == STATE_RELEASED;
  }
}
