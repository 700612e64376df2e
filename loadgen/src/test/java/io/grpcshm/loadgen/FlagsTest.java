package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import picocli.CommandLine;

class FlagsTest {
  private static GrpcLoad.Plan plan(String... args) {
    CommandLine cl = GrpcLoad.commandLine();
    cl.parseArgs(args);
    return ((GrpcLoad) cl.getCommand()).validate();
  }

  @Test
  void defaultsAreGhzs() {
    GrpcLoad.Plan p = plan("--call", "a.B/C", "localhost:1");
    assertEquals(200, p.config().total());
    assertEquals(50, p.config().concurrency());
    assertEquals(0, p.config().rps());
    assertEquals(Duration.ofSeconds(20), p.config().timeout());
    assertEquals(io.grpcshm.TransportMode.AUTO, p.mode());
  }

  @Test
  void smallNWithDefaultConcurrencyShrinksWorkers() {
    assertEquals(10, plan("--call", "a.B/C", "-n", "10", "h:1").config().concurrency());
  }

  @Test
  void durationRun() {
    GrpcLoad.Plan p = plan("--call", "a.B/C", "-z", "1m30s", "-r", "100", "-c", "2",
        "--transport", "shm", "-O", "json,csv", "--output-dir", "/tmp/x", "h:1");
    assertEquals(0, p.config().total());
    assertEquals(Duration.ofSeconds(90), p.config().duration());
    assertEquals(100, p.config().rps());
    assertTrue(p.config().keepDetails());
    assertEquals(io.grpcshm.TransportMode.SHM_ONLY, p.mode());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "-n 10 -c 20                     | -n (10) is smaller than -c (20)",
      "-z 5s -n 100                    | exclusive",
      "-z 5s -x 10s                    | -x caps an -n run",
      "-r 0                            | -r must be a positive",
      "-r -5                           | -r must be a positive",
      "-c 0                            | -c must be at least 1",
      "-n 0 -c 1                       | -n must be at least 1",
      "-c 2 --connections 3            | exceeds -c",
      "--connections 0                 | at least 1",
      "-O summary,json                 | need --output-dir",
      "-O pdf                          | unknown format",
      "--transport udp                 | auto, shm or tcp",
      "--proto a.proto --protoset b.pb | exclusive",
      "-i dir                          | only apply to --proto",
      "-d {} -D f.json                 | exclusive",
      "-z 0s                           | must be positive",
  })
  void refusesNonsense(String flags, String message) {
    String[] extra = flags.trim().split("\\s+");
    String[] args = new String[extra.length + 3];
    args[0] = "--call";
    args[1] = "a.B/C";
    System.arraycopy(extra, 0, args, 2, extra.length);
    args[args.length - 1] = "localhost:1";
    CommandLine.ParameterException e =
        assertThrows(CommandLine.ParameterException.class, () -> plan(args));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }

  @Test
  void refusalsExitWithUsageCode() {
    Cli r = Cli.run("--call", "a.B/C", "-n", "5", "-c", "10", "localhost:1");
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("smaller than -c"), r.err());
  }

  @Test
  void missingCallAndTarget() {
    assertTrue(Cli.run("localhost:1").err().contains("Missing --call"));
    assertTrue(Cli.run("--call", "a.B/C").err().contains("Missing target"));
    assertTrue(Cli.run("--call", "nodot", "h:1").err().contains("package.Service/Method"));
  }

  @Test
  void badDuration() {
    Cli r = Cli.run("--call", "a.B/C", "-z", "ten", "h:1");
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("not a duration"), r.err());
  }

  @Test
  void goDurations() {
    assertEquals(Duration.ofMillis(1500), GoDuration.parse("1.5s"));
    assertEquals(Duration.ofMillis(90_250), GoDuration.parse("1m30s250ms"));
    assertEquals(Duration.ofNanos(250_000), GoDuration.parse("250us"));
    assertEquals(Duration.ofSeconds(3), GoDuration.parse("3"));
    assertThrows(CommandLine.TypeConversionException.class, () -> GoDuration.parse("3x"));
  }

  @Test
  void splitCall() {
    assertEquals("pkg.Svc", DescriptorSource.splitCall("pkg.Svc/M")[0]);
    assertEquals("M", DescriptorSource.splitCall("pkg.Svc.M")[1]);
    assertEquals("pkg.Svc", DescriptorSource.splitCall("/pkg.Svc/M")[0]);
  }

  @Test
  void templates() {
    Template.Context ctx = new Template.Context(7, 3, "p.S/M", "p.S", "M", "p.In", "p.Out");
    assertEquals("n=7 w=3 M p.In",
        Template.parse("n={{.RequestNumber}} w={{ .WorkerID }} {{.MethodName}} {{.InputName}}")
            .render(ctx));
    assertEquals(8, Template.parse("{{randomString 8}}").render(ctx).length());
    assertEquals(36, Template.parse("{{.UUID}}").render(ctx).length());
    int v = Integer.parseInt(Template.parse("{{randomInt 5 6}}").render(ctx));
    assertEquals(5, v);
    assertTrue(Template.parse("plain").isConstant());
    assertFalse(Template.parse("{{newUUID}}").isConstant());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Template.parse("{{.Nope}}"));
    assertTrue(e.getMessage().contains("unknown template action"));
  }

  @Test
  void compareSizes() {
    assertEquals(100, CompareCommand.parseSize("100"));
    assertEquals(65536, CompareCommand.parseSize("64KiB"));
    assertEquals(1 << 20, CompareCommand.parseSize("1MiB"));
    assertThrows(IllegalArgumentException.class, () -> CompareCommand.parseSize("lots"));
  }
}
