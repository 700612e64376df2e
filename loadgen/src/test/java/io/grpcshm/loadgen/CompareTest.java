package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.junit.jupiter.api.Test;

class CompareTest {
  @Test
  void hostedEchoOverThreeTransportsAsJson() {
    Cli r = Cli.run("compare", "-n", "5", "--rounds", "2", "--warmup-rounds", "0", "--sizes",
        "100,4KiB", "-O", "json");
    assertEquals(0, r.exitCode(), r.err());
    JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
    assertTrue(o.get("hostedInThisJvm").getAsBoolean());
    JsonArray results = o.getAsJsonArray("results");
    assertEquals(2, results.size());
    assertEquals(4096, results.get(1).getAsJsonObject().get("payloadBytes").getAsLong());
    for (var e : results) {
      JsonObject t = e.getAsJsonObject().getAsJsonObject("transports");
      assertEquals(10, t.getAsJsonObject("shm").get("count").getAsLong());
      assertEquals(10, t.getAsJsonObject("shm").getAsJsonObject("transportPaths")
          .get("SHARED_MEMORY").getAsLong());
      assertEquals(10, t.getAsJsonObject("tcp").getAsJsonObject("transportPaths")
          .get("TCP").getAsLong());
      assertEquals(10, t.getAsJsonObject("inproc").get("count").getAsLong());
      assertEquals(0, t.getAsJsonObject("inproc").get("errors").getAsLong());
      JsonObject ratios = e.getAsJsonObject().getAsJsonObject("ratios");
      assertTrue(ratios.get("tcpP50OverShmP50").getAsDouble() > 0);
      assertTrue(ratios.get("shmP50OverInprocP50").getAsDouble() > 0);
    }
  }

  @Test
  void refusesInprocForRemoteTargets() {
    Cli r = Cli.run("compare", "--transports", "shm,inproc", "localhost:1");
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("inproc needs the service in this JVM"), r.err());
  }
}
