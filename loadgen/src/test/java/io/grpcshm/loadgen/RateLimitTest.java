package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

/**
 * A constant-rate schedule reaches the asked rate within 5% over 10 s (the module's one long
 * test; the schedule tests are short). Duration and rate can be changed with
 * {@code -Dloadgen.rate.seconds=N -Dloadgen.rate.rps=R}.
 */
class RateLimitTest {
  @Test
  void achievesAskedRateWithinFivePercent() throws Exception {
    int seconds = Integer.getInteger("loadgen.rate.seconds", 10);
    int rate = Integer.getInteger("loadgen.rate.rps", 200);
    try (TestServer server = new TestServer()) {
      Cli r = Cli.run("--call", TestServer.CALL, "-d", "{\"name\":\"r\"}", "-z", seconds + "s",
          "--load-schedule", "const", "-r", Integer.toString(rate), "-c", "4", "-O", "json",
          server.target());
      assertEquals(0, r.exitCode(), r.err());
      JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
      double rps = o.get("rps").getAsDouble();
      long count = o.get("count").getAsLong();
      assertTrue(Math.abs(rps - rate) <= 0.05 * rate, "rps " + rps + " count " + count);
      assertTrue(Math.abs(count - (double) rate * seconds) <= 0.05 * rate * seconds,
          "count " + count);
      JsonObject co = o.getAsJsonObject("coordinatedOmission");
      assertTrue(co.get("corrected").getAsBoolean());
      assertEquals(4 * 1_000_000_000L / rate, co.get("expectedIntervalNanos").getAsLong());
      assertTrue(o.has("latencyDistributionUncorrected"));
      assertEquals(count, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    }
  }
}
