package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import picocli.CommandLine;

/** Schedules: values per step, due times, and the flags that build them. */
class ScheduleTest {
  private static final long S = 1_000_000_000L;

  private static Runner.Config config(String... flags) {
    String[] args = new String[flags.length + 3];
    args[0] = "--call";
    args[1] = "a.B/C";
    System.arraycopy(flags, 0, args, 2, flags.length);
    args[args.length - 1] = "localhost:1";
    CommandLine cl = GrpcLoad.commandLine();
    cl.parseArgs(args);
    return ((GrpcLoad) cl.getCommand()).validate().config();
  }

  @Test
  void stepValuesClampAtEnd() {
    // ghz's example: 50 calls/s up by 10 every 5 s until 150.
    Schedule s = new Schedule("step", 50, 10, 5 * S, 150.0, 0);
    assertEquals(10, s.lastStep());
    assertEquals(50, s.valueAt(0));
    assertEquals(50, s.valueAt(5 * S - 1));
    assertEquals(60, s.valueAt(5 * S));
    assertEquals(150, s.valueAt(50 * S));
    assertEquals(150, s.valueAt(500 * S));
    assertEquals(45 * S, s.nextChangeAfter(44 * S));
    assertEquals(Schedule.NEVER, s.nextChangeAfter(50 * S));
    // An end off the grid is still the final value.
    Schedule off = new Schedule("step", 50, 10, S, 155.0, 0);
    assertEquals(11, off.lastStep());
    assertEquals(150, off.valueOfStep(10));
    assertEquals(155, off.valueOfStep(11));
  }

  @Test
  void maxDurationFreezesTheValue() {
    Schedule s = new Schedule("step", 50, 10, 5 * S, null, 60 * S);
    assertEquals(12, s.lastStep());
    assertEquals(170, s.valueAt(61 * S));
    assertEquals(170, s.valueAt(600 * S));
    // whichever comes first: the end here
    assertEquals(3, new Schedule("step", 50, 10, 5 * S, 80.0, 60 * S).lastStep());
  }

  @Test
  void fallingLine() {
    Schedule s = new Schedule("line", 200, -2, S, 50.0, 0);
    assertEquals(75, s.lastStep());
    assertEquals(198, s.valueAt(S));
    assertEquals(50, s.valueAt(100 * S));
  }

  @Test
  void dueTimesInvertTheRate() {
    assertEquals(S / 2, Schedule.constant(200).dueNanos(100));
    // 100/s for 1 s, then 200/s for 1 s, then 300/s (end).
    Schedule s = new Schedule("step", 100, 100, S, 300.0, 0);
    assertEquals(0, s.dueNanos(0));
    assertEquals(S / 2, s.dueNanos(50));
    assertEquals(S, s.dueNanos(100));
    assertEquals(S + S / 2, s.dueNanos(200));
    assertEquals(2 * S, s.dueNanos(300));
    assertEquals(3 * S, s.dueNanos(600));
    assertEquals(4 * S, s.dueNanos(900));
    // Without an end the steps go on: step i runs at 100 + 100i, so 10 s hold 5500 calls.
    Schedule open = new Schedule("step", 100, 100, S, null, 0);
    assertEquals(10 * S, open.dueNanos(5500));
    long previous = -1;
    for (long k = 0; k < 20_000; k += 7) {
      long due = open.dueNanos(k);
      assertTrue(due > previous, "due times rise");
      previous = due;
    }
  }

  @Test
  void flagsBuildSchedules() {
    Runner.Config c = config("--load-schedule", "step", "--load-start", "50", "--load-step",
        "10", "--load-end", "150", "--load-step-duration", "5s", "-z", "1m");
    assertEquals(new Schedule("step", 50, 10, 5 * S, 150.0, 0), c.rateSchedule());
    assertEquals(0, c.rps());
    c = config("--load-schedule", "line", "--load-start", "200", "--load-step", "-2",
        "--load-end", "50", "-n", "10000", "-c", "10");
    assertEquals(S, c.rateSchedule().stepNanos());
    c = config("-r", "200", "--concurrency-schedule", "step", "--concurrency-start", "5",
        "--concurrency-step", "5", "--concurrency-end", "50", "--concurrency-step-duration",
        "5s", "-n", "100000");
    assertEquals(5, c.concurrency());
    assertEquals(50, c.concurrencySchedule().valueAt(100 * S));
    assertEquals(200, c.rps());
    c = config("--concurrency-schedule", "line", "--concurrency-start", "20",
        "--concurrency-step", "-2", "--concurrency-end", "4", "-z", "10s");
    assertEquals(8, c.concurrencySchedule().lastStep());
    assertTrue(config("--skipFirst", "5", "-n", "10", "-c", "1").skipFirst() == 5);
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "--load-schedule wave                                   | must be const, step or line",
      "--load-schedule step --load-step 10 --load-step-duration 1s | needs --load-start > 0",
      "--load-schedule step --load-start 0 --load-step 10 --load-step-duration 1s | start > 0",
      "--load-schedule step --load-start 10 --load-step-duration 1s | non-zero --load-step",
      "--load-schedule line --load-start 10 --load-step 0     | non-zero --load-step",
      "--load-schedule step --load-start 10 --load-step 5     | positive --load-step-duration",
      "--load-schedule line --load-start 10 --load-step 5 --load-step-duration 2s | changes every 1s",
      "--load-schedule step --load-start 100 --load-step 10 --load-end 50 --load-step-duration 1s | is below",
      "--load-schedule step --load-start 100 --load-step -10 --load-end 150 --load-step-duration 1s | is above",
      "--load-schedule step --load-start 100 --load-step 10 --load-end 100 --load-step-duration 1s | equals",
      "--load-schedule line --load-start 100 --load-step -10  | would reach 0",
      "--load-schedule line --load-start 100 --load-step -10 --load-max-duration 20s | would reach 0",
      "--load-schedule step -r 100 --load-start 10 --load-step 5 --load-step-duration 1s | drop -r",
      "--load-start 10                                        | only apply to a step or line",
      "-r 10 --load-max-duration 5s                           | only apply to a step or line",
      "--concurrency-schedule step -c 5 --concurrency-start 5 --concurrency-step 1 --concurrency-step-duration 1s --concurrency-end 9 | drop -c",
      "--concurrency-schedule step --concurrency-start 5 --concurrency-step 1 --concurrency-step-duration 1s | needs --concurrency-end",
      "--concurrency-schedule line --concurrency-start 5 --concurrency-step -1 | would reach 0",
      "--concurrency-step 2                                   | only apply to a step or line",
      "--concurrency-schedule step --concurrency-start 2 --concurrency-step 1 --concurrency-end 4 --concurrency-step-duration 1s --connections 3 | exceeds -c",
      "--skipFirst 10 -n 10 -c 1                              | leaves none",
      "--skipFirst -1                                         | must not be negative",
      "--stream-call-count 0                                  | at least 1",
      "--stream-interval 0s                                   | must be positive",
      "-b -B f.bin                                            | exclusive",
      "-b -d {}                                               | drop -d/-D",
      "-B f.bin -D f.json                                     | drop -d/-D",
  })
  void refusesNonsense(String flags, String message) {
    CommandLine.ParameterException e = assertThrows(CommandLine.ParameterException.class,
        () -> config(flags.trim().split("\\s+")));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }

  @Test
  void durationFlagsUseGoSyntax() {
    Runner.Config c = config("--load-schedule", "step", "--load-start", "5", "--load-step",
        "5", "--load-step-duration", "1m30s", "--load-max-duration", "10m", "-z", "1h");
    assertEquals(Duration.ofSeconds(90).toNanos(), c.rateSchedule().stepNanos());
    assertEquals(Duration.ofMinutes(10).toNanos(), c.rateSchedule().maxNanos());
  }
}
