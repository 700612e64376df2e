package io.grpc.testing.integration;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * grpc's interop flag syntax ({@code --name=value}, every flag known), shared by
 * {@link ShmInteropServer} and {@link ShmInteropClient}.
 */
final class InteropFlags {
  /** {@code --transport}: how the shared-memory builders pick their path. */
  enum Transport {
    /** Shared memory when the peer is on this host, else TCP. */
    AUTO,
    /** Shared memory only: a call fails rather than use TCP. */
    SHM,
    /** TCP only (stock Netty). */
    TCP;

    static Transport parse(String value) {
      try {
        return valueOf(value.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new UsageException("--transport must be auto, shm or tcp, not " + value);
      }
    }
  }

  /** A command line that cannot be run; the message says why. */
  static final class UsageException extends RuntimeException {
    UsageException(String message) {
      super(message);
    }
  }

  private final Map<String, String> values = new LinkedHashMap<>();

  private InteropFlags() {}

  static InteropFlags parse(String[] args, Set<String> known) {
    InteropFlags flags = new InteropFlags();
    for (String arg : args) {
      if (!arg.startsWith("--")) {
        throw new UsageException("all arguments must start with '--': " + arg);
      }
      String[] parts = arg.substring(2).split("=", 2);
      if (parts[0].equals("help")) {
        throw new UsageException("");
      }
      if (parts.length != 2) {
        throw new UsageException("all arguments must be of the form --name=value: " + arg);
      }
      if (!known.contains(parts[0])) {
        throw new UsageException("unknown argument --" + parts[0]);
      }
      flags.values.put(parts[0], parts[1]);
    }
    return flags;
  }

  String string(String name, String defaultValue) {
    return values.getOrDefault(name, defaultValue);
  }

  int integer(String name, int defaultValue) {
    String v = values.get(name);
    if (v == null) {
      return defaultValue;
    }
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + " must be an integer, not " + v);
    }
  }

  boolean bool(String name, boolean defaultValue) {
    String v = values.get(name);
    if (v == null) {
      return defaultValue;
    }
    if (!v.equals("true") && !v.equals("false")) {
      throw new UsageException("--" + name + " must be true or false, not " + v);
    }
    return Boolean.parseBoolean(v);
  }

  Transport transport() {
    return Transport.parse(string("transport", "auto"));
  }
}
