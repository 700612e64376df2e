package io.grpcshm.internal.nativeio;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Whether this process lets grpc-shm make native calls (java.lang.foreign). Java allows them
 * with a warning by default, but {@code --illegal-native-access=deny} (the future default) refuses
 * them unless {@code --enable-native-access} names our module (or ALL-UNNAMED on the class path).
 * Without them shared memory is off: builders serve and call over TCP only, and say so once.
 */
public final class NativeAccess {
  private static final Logger log = Logger.getLogger(NativeAccess.class.getName());
  /** The flag users need, for messages. */
  public static final String FLAG = "--enable-native-access=ALL-UNNAMED";
  private static volatile String unavailable;
  private static volatile boolean checked;

  private NativeAccess() {}

  /** Null when native calls work; else why not, with what to do about it. */
  public static String unavailableReason() {
    if (!checked) {
      synchronized (NativeAccess.class) {
        if (!checked) {
          unavailable = probe();
          checked = true;
          if (unavailable != null) {
            log.log(Level.WARNING, "grpc-shm: shared memory is off, TCP only: {0}", unavailable);
          }
        }
      }
    }
    return unavailable;
  }

  private static String probe() {
    try {
      Class.forName(Linux.class.getName(), true, NativeAccess.class.getClassLoader());
      return null;
    } catch (ExceptionInInitializerError | NoClassDefFoundError e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      if (cause instanceof IllegalCallerException) {
        return "this JVM denies native access to grpc-shm (" + cause.getMessage() + "); start"
            + " java with " + FLAG + " (class path) or --enable-native-access=<module> (module"
            + " path)";
      }
      return "grpc-shm's native bindings failed to load: " + cause;
    } catch (ClassNotFoundException e) {
      throw new AssertionError(e); // our own class
    }
  }
}
