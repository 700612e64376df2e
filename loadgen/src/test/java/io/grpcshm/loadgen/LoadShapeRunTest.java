package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Step and line schedules against a server: the calls started in each step match the asked
 * rate (within 10%, the machine is shared), and worker schedules change the workers in use.
 */
class LoadShapeRunTest extends WithTestServer {
  private static JsonObject run(String... args) {
    String[] all = new String[args.length + 6];
    all[0] = "--call";
    all[1] = TestServer.CALL;
    all[2] = "-O";
    all[3] = "json";
    System.arraycopy(args, 0, all, 4, args.length);
    all[all.length - 2] = "--transport=shm";
    all[all.length - 1] = server.target();
    Cli r = Cli.run(all);
    assertEquals(0, r.exitCode(), r.err());
    return JsonParser.parseString(r.out()).getAsJsonObject();
  }

  private static void assertRates(JsonArray steps, double... asked) {
    assertEquals(asked.length, steps.size(), steps.toString());
    for (int i = 0; i < asked.length; i++) {
      JsonObject s = steps.get(i).getAsJsonObject();
      assertEquals(asked[i], s.get("target").getAsDouble(), 1e-9);
      double achieved = s.get("achievedRps").getAsDouble();
      assertTrue(Math.abs(achieved - asked[i]) <= 0.10 * asked[i],
          "step " + i + ": asked " + asked[i] + " calls/s, achieved " + achieved + " in "
              + steps);
    }
  }

  @Test
  void stepScheduleRatesPerStep() {
    JsonObject o = run("--load-schedule", "step", "--load-start", "50", "--load-step", "50",
        "--load-end", "150", "--load-step-duration", "1s", "-z", "4s", "-c", "4");
    // The last step (150 calls/s) runs from 2 s to the end of the run.
    assertRates(o.getAsJsonArray("loadSteps"), 50, 100, 150);
    assertEquals(2_000_000_000L, o.getAsJsonArray("loadSteps").get(2).getAsJsonObject()
        .get("start").getAsLong());
    assertTrue(o.getAsJsonObject("coordinatedOmission").get("corrected").getAsBoolean());
  }

  @Test
  void lineScheduleFallsEverySecond(@TempDir Path dir) throws Exception {
    Cli r = Cli.run("--call", TestServer.CALL, "--load-schedule", "line", "--load-start", "120",
        "--load-step", "-40", "--load-end", "40", "-z", "3s", "-c", "4", "-O", "json,summary",
        "--output-dir", dir.toString(), server.target());
    assertEquals(0, r.exitCode(), r.err());
    JsonObject o = JsonParser.parseString(Files.readString(dir.resolve("report.json")))
        .getAsJsonObject();
    assertRates(o.getAsJsonArray("loadSteps"), 120, 80, 40);
    String summary = Files.readString(dir.resolve("summary.txt"));
    assertTrue(summary.contains("Load schedule (calls started per step):"), summary);
    assertTrue(summary.contains("  [1] 1.00-2.00 s\ttarget 80 calls/s\t"), summary);
  }

  @Test
  void concurrencyStepsUpAndDown() {
    // Each call sleeps 20 ms, so every worker that is on starts calls in its step.
    JsonObject up = run("-d", "{\"sleepMicros\":20000}", "--concurrency-schedule", "step",
        "--concurrency-start", "1", "--concurrency-step", "1", "--concurrency-end", "3",
        "--concurrency-step-duration", "400ms", "-z", "1200ms");
    JsonArray steps = up.getAsJsonArray("concurrencySteps");
    assertEquals(3, steps.size(), steps.toString());
    for (int i = 0; i < 3; i++) {
      JsonObject s = steps.get(i).getAsJsonObject();
      assertEquals(i + 1, s.get("target").getAsInt());
      assertEquals(i + 1, s.get("workers").getAsInt(), steps.toString());
    }
    JsonObject down = run("-d", "{\"sleepMicros\":20000}", "--concurrency-schedule", "step",
        "--concurrency-start", "3", "--concurrency-step", "-1", "--concurrency-end", "1",
        "--concurrency-step-duration", "400ms", "-z", "1200ms", "-r", "200");
    steps = down.getAsJsonArray("concurrencySteps");
    for (int i = 0; i < 3; i++) {
      assertEquals(3 - i, steps.get(i).getAsJsonObject().get("workers").getAsInt(),
          steps.toString());
    }
  }

  @Test
  void workersSwitchedOffWhileWaitingHandBackTheirCalls() {
    // At 100 calls/s each of 3 workers waits ~30 ms for its next call; when the schedule
    // switches a waiting worker off, its request number must still be sent by another one.
    server.names.clear();
    JsonObject o = run("-d", "{\"name\":\"n{{.RequestNumber}}\"}", "-r", "100", "-n", "90",
        "--concurrency-schedule", "step", "--concurrency-start", "3", "--concurrency-step", "-1",
        "--concurrency-end", "1", "--concurrency-step-duration", "300ms");
    assertEquals(90, o.get("count").getAsLong());
    java.util.Set<String> names = new java.util.HashSet<>(server.names);
    for (int i = 0; i < 90; i++) {
      assertTrue(names.contains("n" + i), "request " + i + " was never sent");
    }
    JsonArray steps = o.getAsJsonArray("concurrencySteps");
    for (int i = 0; i < 3; i++) {
      assertEquals(3 - i, steps.get(i).getAsJsonObject().get("workers").getAsInt(),
          steps.toString());
    }
  }
}
