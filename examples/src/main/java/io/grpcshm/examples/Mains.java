package io.grpcshm.examples;

import java.time.Duration;
import picocli.CommandLine;

/**
 * How the examples' mains run their picocli commands. Exit status: 0 done, 1 failed (stack trace
 * printed), 2 bad arguments (message and usage printed).
 */
final class Mains {
  private Mains() {}

  /**
   * A demo or benchmark: ends the JVM with the command's status once it is done, so lingering
   * library threads cannot keep a failed run alive; {@link Watchdog} bounds a hang by
   * {@code limit}.
   */
  static void runBounded(Object command, Duration limit, String[] args) {
    CommandLine commandLine = new CommandLine(command);
    Watchdog.exitAfter(limit, commandLine.getCommandName());
    int code;
    try {
      code = commandLine.execute(args);
    } catch (Throwable t) {
      t.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  /** A server or a client call: returns when it is done; exits only with a failure status. */
  static void run(Object command, String[] args) {
    int code = new CommandLine(command).execute(args);
    if (code != 0) {
      System.exit(code);
    }
  }
}
