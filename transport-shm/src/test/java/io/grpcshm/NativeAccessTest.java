package io.grpcshm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A JVM that denies native access (--illegal-native-access=deny, no --enable-native-access):
 * grpc-shm says once what flag is missing and serves and calls over TCP instead of failing.
 */
class NativeAccessTest {
  @Test
  @Timeout(value = 2, unit = TimeUnit.MINUTES)
  void withoutNativeAccessEverythingRunsOverTcpWithOneClearWarning() throws Exception {
    String java = ProcessHandle.current().info().command().orElse("java");
    Process child = new ProcessBuilder(List.of(java, "--illegal-native-access=deny",
        "--sun-misc-unsafe-memory-access=allow", "-Xmx256m",
        "-cp", System.getProperty("java.class.path"), NoNativeAccessMain.class.getName()))
        .start();
    try {
      CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> {
        try {
          return child.getErrorStream().readAllBytes();
        } catch (java.io.IOException e) {
          return new byte[0];
        }
      });
      String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(child.waitFor(60, TimeUnit.SECONDS));
      String log = new String(err.get(10, TimeUnit.SECONDS), StandardCharsets.UTF_8);
      assertEquals(0, child.exitValue(), out + log);
      assertTrue(out.contains("AUTO TCP 1"), out + log);
      assertTrue(out.contains("SHM_ONLY UNAVAILABLE shared memory is unavailable"), out + log);
      assertTrue(log.contains("shared memory is off, TCP only")
          && log.contains("--enable-native-access=ALL-UNNAMED"), log);
      int warnings = log.split("shared memory is off, TCP only", -1).length - 1;
      assertEquals(1, warnings, log);
    } finally {
      child.destroyForcibly();
      child.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
