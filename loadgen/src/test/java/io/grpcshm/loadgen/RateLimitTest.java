package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

/**
 * A rate-limited run reaches the asked rate within 5%. Duration and rate are system properties
 * ({@code -Dloadgen.rate.seconds=10 -Dloadgen.rate.rps=200} for the 10 s run); the
 * default is 3 s to keep the module's tests short.
 */
class RateLimitTest {
  @Test
  void achievesAskedRateWithinFivePercent() throws Exception {
    int seconds = Integer.getInteger("loadgen.rate.seconds", 3);
    int rate = Integer.getInteger("loadgen.rate.rps", 200);
    try (TestServer server = new TestServer()) {
      Cli r = Cli.run("--call", TestServer.CALL, "-d", "{\"name\":\"r\"}", "-z", seconds + "s",
          "-r", Integer.toString(rate), "-c", "4", "-O", "json", server.target());
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
