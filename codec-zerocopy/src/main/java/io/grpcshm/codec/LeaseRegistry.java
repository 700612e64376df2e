package io.grpcshm.codec;

import java.lang.ref.WeakReference;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds the {@link Lease} of an aliased message, by identity. grpc's {@code Marshaller.parse}
 * can only return the message itself, so {@link ZeroCopyMessage#of} looks the lease up here.
 *
 * <p>Keys are weak and compare by identity (messages have value equality, and comparing two
 * 64 MiB aliased fields — possibly released — is the last thing a lookup should do). The value
 * is strong: the lease must live while its message does, even if the message has no aliased
 * field left that would keep it reachable. A {@link java.lang.ref.Cleaner} action on the message
 * removes the entry when the message dies; the lease then lives on only through aliased buffers.
 */
final class LeaseRegistry {
  private static final ConcurrentHashMap<Key, Lease> LEASES = new ConcurrentHashMap<>();

  private LeaseRegistry() {}

  static void bind(Object message, Lease lease) {
    Key key = new Key(message);
    LEASES.put(key, lease);
    Lease.CLEANER.register(message, () -> LEASES.remove(key));
  }

  /** The message's lease, or null if it aliases nothing (never aliased or already collected). */
  static Lease find(Object message) {
    return LEASES.get(new Key(message));
  }

  static int size() {
    return LEASES.size();
  }

  private static final class Key extends WeakReference<Object> {
    private final int hash;

    Key(Object referent) {
      super(referent);
      this.hash = System.identityHashCode(referent);
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object o) {
      if (o == this) {
        return true;
      }
      if (!(o instanceof Key other)) {
        return false;
      }
      Object mine = get();
      return mine != null && mine == other.get();
    }
  }
}
