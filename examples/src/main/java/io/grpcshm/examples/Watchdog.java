package io.grpcshm.examples;

import java.time.Duration;

/** Ends a demo or benchmark that runs far beyond its budget (a hang must not block a build). */
final class Watchdog {
  private Watchdog() {}

  static void exitAfter(Duration limit, String what) {
    Thread watchdog = new Thread(() -> {
      try {
        Thread.sleep(limit.toMillis());
      } catch (InterruptedException e) {
        return;
      }
      System.err.println(what + " did not finish within " + limit + "; exiting (children are "
          + "killed by shutdown hooks)");
      System.exit(2);
    }, "watchdog");
    watchdog.setDaemon(true);
    watchdog.start();
  }
}
