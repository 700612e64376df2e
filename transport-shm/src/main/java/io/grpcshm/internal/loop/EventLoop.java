package io.grpcshm.internal.loop;

import io.grpcshm.IdleStrategy;
import io.grpcshm.internal.nativeio.Epoll;
import io.grpcshm.internal.nativeio.EventFd;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One transport thread serving the rings and control sockets of many connections (docs/
 * ARCHITECTURE.md, "Threads"). A connection side is a {@link Member}: while it is <em>hot</em>
 * the loop polls its ring every turn; after a quiet spell the loop <em>parks</em> it (the ring's
 * consumer-sleeping flag is set, so the peer sends a WAKE message on the socket with its next
 * frame) and, once no member is hot, blocks in epoll on every member's socket. A busy connection
 * never makes a system call; an idle one costs nothing.
 *
 * <p>Everything a member does with its ring happens on this thread. Other threads talk to the
 * loop through {@link #execute}; the loop's own eventfd wakes it for that.
 */
public final class EventLoop {
  private static final Logger log = Logger.getLogger(EventLoop.class.getName());
  /** Events handled per epoll_wait. */
  private static final int EVENT_BATCH = 256;
  /** epoll data of the loop's own wake-up eventfd. */
  private static final long SELF = -1;
  /** A loop without members for this long ends its thread; the next member starts a new one. */
  static final long LINGER_NANOS = TimeUnit.SECONDS.toNanos(2);
  /** Housekeeping period: parked rings checked for lost wake-ups, idle memory trimmed. */
  private static final long TICK_NANOS = TimeUnit.SECONDS.toNanos(1);

  /** A connection side served by a loop. Every method runs on the loop thread. */
  public interface Member {
    /** Reads what the ring holds, sends what waits for ring space; returns the work done. */
    int poll();

    /**
     * Announces that this side will sleep (the peer then rings the doorbell with its next
     * frame). Returns false, without sleeping, if work is already visible.
     */
    boolean park();

    /** Withdraws the sleep announcement (after a doorbell, or when the loop stays awake). */
    void unpark();

    /**
     * The control socket has something to read (control messages, WAKE), or hung up ({@link
     * Epoll} event bits). The member reads all of it without blocking.
     */
    void onSocket(int events);

    /**
     * Housekeeping once a second while registered (idle memory, timeouts). Returns true if the
     * member, {@code parked}, has work all the same (a wake-up was lost): the loop polls it.
     */
    boolean tick(long nowNanos, boolean parked);

    /** Removed after a failure of its own: the member must close its connection. */
    void failed(Throwable t);

    /** No longer served: the loop will not touch the member again. */
    void removed();
  }

  private final String name;
  private final LoopIdler idler;
  private final Epoll epoll = new Epoll(EVENT_BATCH);
  private final EventFd wakeup = EventFd.create();
  private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
  /** Set by {@link #execute} before it signals, cleared by the loop before it runs tasks. */
  private volatile boolean tasksPending;

  // Loop thread only.
  private final List<Slot> slots = new ArrayList<>();
  private final Map<Member, Slot> slotOf = new IdentityHashMap<>();
  private final List<Integer> freeSlots = new ArrayList<>();
  private Slot[] hot = new Slot[16];
  private int hotCount;
  private int memberCount;
  private long emptySince;
  private long nextTick;

  private final Thread thread;

  // Hand-offs held until the member being polled is done (loop thread only; #holdExecution).
  private Executor[] heldTargets = new Executor[16];
  private Runnable[] heldTasks = new Runnable[16];
  private HoldOwner[] heldOwners = new HoldOwner[16];
  private int[] heldCalls = new int[16];
  private int heldCount;
  /** The member being polled, if it takes part in holding; null otherwise. */
  private HoldOwner holdOwner;
  /** Held hand-offs to grpc's default pool go through this queue (see {@link DefaultPoolRelay}). */
  private final DefaultPoolRelay relay;

  /**
   * A member whose poll may hold executor hand-offs (see {@link #holdExecution}): it says which
   * of its calls it is working on, and hears if a held hand-off is refused.
   */
  public interface HoldOwner {
    /** The call (stream id) the member is handling now; 0 for none (nothing is held then). */
    int currentCall();

    /**
     * The executor refused a hand-off held for {@code call}: that call must fail as it would
     * have had the executor refused at once. Runs on the loop thread.
     */
    void heldExecutionRejected(int call, RuntimeException refusal);
  }

  /** The loop's thread: lets {@link #holdExecution} find its loop without a thread-local. */
  private static final class LoopThread extends Thread {
    final EventLoop loop;

    LoopThread(EventLoop loop, String name) {
      super(name);
      this.loop = loop;
    }

    @Override
    public void run() {
      loop.run();
    }
  }

  /**
   * On a loop thread polling a member that handles a call: keeps {@code target.execute(task)}
   * until that member's poll ends (the rest of its ring batch), so that everything one batch
   * hands to a call (a request's headers, message and half-close) reaches the executor as one
   * wake-up of one of its threads, not one each. Returns false, doing nothing, anywhere else.
   */
  public static boolean holdExecution(Executor target, Runnable task) {
    if (!(Thread.currentThread() instanceof LoopThread t)) {
      return false;
    }
    EventLoop loop = t.loop;
    HoldOwner owner = loop.holdOwner;
    if (owner == null) {
      return false;
    }
    int call = owner.currentCall();
    if (call == 0) {
      return false;
    }
    loop.hold(target, task, owner, call);
    return true;
  }

  /**
   * Buffers for a control message read from a member's socket: one pair per loop, shared by its
   * members (a member reads its socket only in {@link Member#onSocket}, on the loop thread), not
   * one per connection (4 KiB each, at thousands of idle connections).
   */
  public static final class ControlScratch {
    public final byte[] message = new byte[UnixSeqpacketSocket.MAX_MESSAGE];
    public final int[] fds = new int[UnixSeqpacketSocket.MAX_FDS];
  }

  private final ControlScratch controlScratch = new ControlScratch();

  /**
   * This loop thread's {@link ControlScratch}; on any other thread (a test driving a member
   * itself) a fresh one.
   */
  public static ControlScratch controlScratch() {
    return Thread.currentThread() instanceof LoopThread t ? t.loop.controlScratch
        : new ControlScratch();
  }

  private void hold(Executor target, Runnable task, HoldOwner owner, int call) {
    int n = heldCount;
    if (n == heldTasks.length) {
      heldTargets = Arrays.copyOf(heldTargets, n * 2);
      heldTasks = Arrays.copyOf(heldTasks, n * 2);
      heldOwners = Arrays.copyOf(heldOwners, n * 2);
      heldCalls = Arrays.copyOf(heldCalls, n * 2);
    }
    heldTargets[n] = target;
    heldTasks[n] = task;
    heldOwners[n] = owner;
    heldCalls[n] = call;
    heldCount = n + 1;
  }

  /** Hands over what {@link #holdExecution} kept, in order. */
  private void releaseHeld() {
    for (int i = 0; i < heldCount; i++) {
      Executor target = heldTargets[i];
      Runnable task = heldTasks[i];
      HoldOwner owner = heldOwners[i];
      heldTargets[i] = null;
      heldTasks[i] = null;
      heldOwners[i] = null;
      if (DefaultPoolRelay.ENABLED && target instanceof GrpcDefaultExecutor pool) {
        relay.push(pool, task, owner, heldCalls[i]);
        continue;
      }
      try {
        target.execute(task);
      } catch (RuntimeException refusal) {
        try {
          owner.heldExecutionRejected(heldCalls[i], refusal);
        } catch (RuntimeException again) {
          log.log(Level.WARNING, name + ": failing a call its executor refused failed", again);
        }
      }
    }
    heldCount = 0;
  }

  /** A member's place: its index is the epoll data of its socket. */
  private static final class Slot {
    final int index;
    Member member;
    int socketFd;
    boolean isHot;

    Slot(int index) {
      this.index = index;
    }
  }

  EventLoop(String name, IdleStrategy idle) {
    this.name = name;
    this.idler = new LoopIdler(idle);
    this.relay = new DefaultPoolRelay(name, idle);
    epoll.add(wakeup.fd(), Epoll.IN, SELF);
    this.emptySince = System.nanoTime();
    this.thread = new LoopThread(this, name);
    thread.setDaemon(true);
  }

  void start() {
    thread.start();
  }

  public String name() {
    return name;
  }

  /** True on this loop's thread. */
  public boolean inLoop() {
    return Thread.currentThread() == thread;
  }

  /** Runs {@code task} on the loop thread soon (never inline, even from the loop thread). */
  public void execute(Runnable task) {
    tasks.add(task);
    tasksPending = true;
    if (!inLoop()) {
      wakeup.signal();
    }
  }

  boolean hasTasks() {
    return !tasks.isEmpty();
  }

  /**
   * Serves {@code member} from now on: its ring is polled (it starts hot), its socket is
   * watched. Called on the loop thread via {@link #execute}.
   */
  void register(Member member, int socketFd) {
    Slot slot;
    if (freeSlots.isEmpty()) {
      slot = new Slot(slots.size());
      slots.add(slot);
    } else {
      slot = slots.get(freeSlots.removeLast());
    }
    slot.member = member;
    slot.socketFd = socketFd;
    try {
      epoll.add(socketFd, Epoll.IN | Epoll.RDHUP, slot.index);
    } catch (RuntimeException e) {
      slot.member = null;
      freeSlots.add(slot.index);
      member.failed(e);
      member.removed();
      return;
    }
    slotOf.put(member, slot);
    memberCount++;
    makeHot(slot);
  }

  /** Stops serving {@code member}; it hears {@link Member#removed()} on the loop thread. */
  void deregister(Member member) {
    Slot s = slotOf.get(member);
    if (s != null) {
      release(s);
      member.removed();
    }
  }

  /** Polls {@code member} from the next turn on (it had local work queued). */
  void makeHot(Member member) {
    Slot s = slotOf.get(member);
    if (s != null && !s.isHot) {
      member.unpark();
      makeHot(s);
    }
  }

  private void release(Slot slot) {
    if (slot.member == null) {
      return;
    }
    try {
      epoll.remove(slot.socketFd);
    } catch (RuntimeException ignored) {
      // The socket may already be closed; epoll dropped it then.
    }
    if (slot.isHot) {
      removeHot(slot);
    }
    slotOf.remove(slot.member);
    slot.member = null;
    freeSlots.add(slot.index);
    memberCount--;
    if (memberCount == 0) {
      emptySince = System.nanoTime();
    }
  }

  int memberCount() {
    return memberCount;
  }

  private void makeHot(Slot slot) {
    if (slot.isHot) {
      return;
    }
    slot.isHot = true;
    if (hotCount == hot.length) {
      hot = Arrays.copyOf(hot, hotCount * 2);
    }
    hot[hotCount++] = slot;
  }

  private void removeHot(Slot slot) {
    for (int i = 0; i < hotCount; i++) {
      if (hot[i] == slot) {
        hot[i] = hot[--hotCount];
        hot[hotCount] = null;
        break;
      }
    }
    slot.isHot = false;
  }

  private void run() {
    nextTick = System.nanoTime() + TICK_NANOS;
    try {
      while (true) {
        int work = runTasks();
        for (int i = 0; i < hotCount; i++) {
          Slot s = hot[i];
          holdOwner = s.member instanceof HoldOwner owner ? owner : null;
          try {
            work += s.member.poll();
          } catch (Throwable t) {
            fail(s, t);
            i--; // fail() moved another slot into position i
          } finally {
            holdOwner = null;
            if (heldCount > 0) {
              releaseHeld();
            }
          }
        }
        long now = System.nanoTime();
        relay.check(now, false);
        if (now - nextTick >= 0) {
          tick(now);
        }
        // With no member hot, only the loop's own tasks made work: nothing to spin for.
        if ((work > 0 || hotCount > 0) && idler.idle(work, now)) {
          continue;
        }
        if (!parkAll()) {
          continue; // a member saw work while parking
        }
        // Nothing checks the relay's queue while the loop sleeps.
        relay.check(now, true);
        if (memberCount == 0 && !tasksPending && now - emptySince > LINGER_NANOS
            && EventLoops.retire(this)) {
          break;
        }
        int timeoutMillis = memberCount == 0
            ? (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(LINGER_NANOS - (now - emptySince)))
            : (int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(nextTick - now));
        int n = tasksPending ? 0 : epoll.await(timeoutMillis);
        for (int i = 0; i < n; i++) {
          dispatch(epoll.data(i), epoll.mask(i));
        }
        idler.reset();
      }
    } catch (Throwable t) {
      log.log(Level.SEVERE, name + " failed; its connections are closed", t);
      for (Slot s : new ArrayList<>(slots)) {
        if (s.member != null) {
          fail(s, t);
        }
      }
      EventLoops.retire(this);
    } finally {
      drainTasksAfterExit();
      relay.check(System.nanoTime(), true);
      epoll.close();
      wakeup.close();
    }
  }

  /** Parks every hot member; false (all unparked again) if one had work. */
  private boolean parkAll() {
    for (int i = 0; i < hotCount; i++) {
      Slot s = hot[i];
      boolean parked;
      try {
        parked = s.member.park();
      } catch (Throwable t) {
        fail(s, t);
        i--;
        continue;
      }
      if (!parked) {
        for (int j = 0; j < i; j++) {
          hot[j].member.unpark();
        }
        return false;
      }
    }
    // Parked members leave the hot list: a doorbell or socket event brings each back.
    for (int i = 0; i < hotCount; i++) {
      hot[i].isHot = false;
      hot[i] = null;
    }
    hotCount = 0;
    return true;
  }

  private void dispatch(long data, int events) {
    if (data == SELF) {
      wakeup.drain();
      return;
    }
    if (data < 0 || data >= slots.size()) {
      return;
    }
    Slot s = slots.get((int) data);
    Member m = s.member;
    if (m == null) {
      return; // removed after this event was reported
    }
    try {
      m.onSocket(events);
      if (s.member != m) {
        return; // onSocket closed it
      }
      if (!s.isHot) {
        s.member.unpark();
        makeHot(s);
      }
    } catch (Throwable t) {
      fail(s, t);
    }
  }

  private int runTasks() {
    if (!tasksPending) {
      return 0;
    }
    tasksPending = false;
    int n = 0;
    Runnable task;
    while ((task = tasks.poll()) != null) {
      try {
        task.run();
      } catch (Throwable t) {
        log.log(Level.WARNING, name + ": task failed", t);
      }
      n++;
    }
    return n;
  }

  private void tick(long now) {
    nextTick = now + TICK_NANOS;
    for (Slot s : slots) {
      if (s.member != null) {
        try {
          if (s.member.tick(now, !s.isHot) && !s.isHot) {
            s.member.unpark();
            makeHot(s);
          }
        } catch (Throwable t) {
          fail(s, t);
        }
      }
    }
  }

  private void fail(Slot s, Throwable t) {
    Member m = s.member;
    if (m == null) {
      return;
    }
    release(s);
    try {
      m.failed(t);
    } catch (Throwable again) {
      log.log(Level.WARNING, name + ": closing a failed member failed", again);
    }
    try {
      m.removed();
    } catch (Throwable again) {
      log.log(Level.WARNING, name + ": removing a member failed", again);
    }
  }

  /** Tasks that raced with the thread's exit still run (on the exiting thread). */
  private void drainTasksAfterExit() {
    tasksPending = true;
    runTasks();
  }

  @Override
  public String toString() {
    return "EventLoop{" + name + ", " + memberCount + " members}";
  }
}
