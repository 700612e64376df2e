package io.grpcshm.policy.tools;

import picocli.CommandLine;

/** Shared command-line set-up: a failure prints one line naming the problem, exit status 1. */
final class Cli {
  private Cli() {}

  static int run(Object command, String... args) {
    CommandLine cl = new CommandLine(command);
    cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
      cmd.getErr().println(cmd.getCommandName() + ": " + e.getMessage());
      return 1;
    });
    return cl.execute(args);
  }
}
