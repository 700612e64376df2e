package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpcshm.TransportPath;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The real case: grpc-load against its example server ({@code grpc-load echo-server}, as the
 * README starts it) running in another JVM, over shared memory and over TCP, with descriptors
 * from the server's reflection service; then {@code compare} against it.
 */
class ChildServerEndToEndTest {
  private static final Pattern LISTENING = Pattern.compile("listening on port (\\d+)");

  @Test
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  void loadAndCompareAgainstTheExampleServerInAnotherProcess() throws Exception {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElseThrow());
    command.add("--enable-native-access=ALL-UNNAMED");
    command.add("-Xmx256m");
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(GrpcLoad.class.getName());
    command.addAll(List.of("echo-server", "--port", "0"));
    Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
    try {
      BufferedReader out = new BufferedReader(
          new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
      int port = CompletableFuture.supplyAsync(() -> {
        try {
          for (String line; (line = out.readLine()) != null; ) {
            Matcher m = LISTENING.matcher(line);
            if (m.find()) {
              return Integer.parseInt(m.group(1));
            }
          }
          throw new IllegalStateException("echo-server exited without a port");
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      }).get(60, TimeUnit.SECONDS);
      String target = "localhost:" + port;

      for (String transport : List.of("shm", "tcp")) {
        Cli r = Cli.run("--call", BuiltinEcho.CALL, "-d", "{\"payload\":\"aGVsbG8=\"}", "-n",
            "100", "-c", "4", "--transport", transport, "-O", "json", target);
        assertEquals(0, r.exitCode(), r.err());
        JsonObject o = JsonParser.parseString(r.out()).getAsJsonObject();
        assertEquals(100, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
        String path = transport.equals("shm") ? TransportPath.SHARED_MEMORY.name()
            : TransportPath.TCP.name();
        assertEquals(100, o.getAsJsonObject("transportPathDistribution").get(path).getAsLong(),
            transport + ": " + o.getAsJsonObject("transportPathDistribution"));
      }

      Cli compare = Cli.run("compare", "-n", "10", "--rounds", "1", "--warmup-rounds", "0",
          "--sizes", "100,64KiB", "-O", "json", target);
      assertEquals(0, compare.exitCode(), compare.err());
      JsonObject c = JsonParser.parseString(compare.out()).getAsJsonObject();
      for (var e : c.getAsJsonArray("results")) {
        JsonObject t = e.getAsJsonObject().getAsJsonObject("transports");
        assertEquals(10, t.getAsJsonObject("shm").getAsJsonObject("transportPaths")
            .get("SHARED_MEMORY").getAsLong());
        assertEquals(10, t.getAsJsonObject("tcp").getAsJsonObject("transportPaths")
            .get("TCP").getAsLong());
      }
    } finally {
      child.destroyForcibly();
      assertTrue(child.waitFor(30, TimeUnit.SECONDS), "echo-server child did not exit");
    }
  }
}
