package io.grpcshm.loadgen;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * Renders a page in Debian's headless chromium and returns the DOM after its scripts ran
 * ({@code --dump-dom}). Each render gets a fresh profile directory, deleted afterwards; the
 * browser (and any child it left) is killed if it overruns the time limit or the test ends.
 */
final class HeadlessChromium {
  /** Debian's chromium; -Dloadgen.chromium=PATH points elsewhere (or nowhere, to see the skip). */
  static final Path CHROMIUM =
      Path.of(System.getProperty("loadgen.chromium", "/usr/bin/chromium"));
  static final long TIME_LIMIT_SECONDS = 60;

  private HeadlessChromium() {}

  /** Skips the calling test when chromium is not installed. */
  static void assumeInstalled() {
    Assumptions.assumeTrue(Files.isExecutable(CHROMIUM), "headless-browser check skipped: "
        + CHROMIUM + " is missing; install it with: sudo apt-get install -y chromium");
  }

  static String dumpDom(Path page) throws IOException, InterruptedException {
    Path profile = Files.createTempDirectory("grpc-load-chromium-");
    Path out = Files.createTempFile("grpc-load-dom-", ".html");
    Path err = Files.createTempFile("grpc-load-chromium-", ".log");
    Process p = null;
    try {
      p = new ProcessBuilder(List.of(CHROMIUM.toString(), "--headless", "--no-sandbox",
          "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile,
          "--dump-dom", page.toAbsolutePath().toUri().toString()))
          .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      if (!p.waitFor(TIME_LIMIT_SECONDS, TimeUnit.SECONDS)) {
        throw new AssertionError("chromium did not finish within " + TIME_LIMIT_SECONDS
            + " s; its log:\n" + tail(err));
      }
      if (p.exitValue() != 0) {
        throw new AssertionError("chromium exited with " + p.exitValue() + "; its log:\n"
            + tail(err));
      }
      return Files.readString(out, StandardCharsets.UTF_8);
    } finally {
      if (p != null) {
        p.descendants().forEach(ProcessHandle::destroyForcibly);
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
      delete(profile);
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  private static String tail(Path log) throws IOException {
    String s = Files.readString(log, StandardCharsets.UTF_8);
    return s.length() > 4000 ? s.substring(s.length() - 4000) : s;
  }

  private static void delete(Path dir) throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(f);
      }
    }
  }
}
