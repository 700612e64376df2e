package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.grpc.Server;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.testing.TlsTesting;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportPath;
import io.netty.handler.ssl.ClientAuth;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** ghz's connection and statistics flags: TLS, connect timeout, keepalive, count-errors, cpus. */
class ConnectionFlagsTest extends WithTestServer {
  /** A name in grpc's test server certificate (server1.pem: *.test.google.fr). */
  private static final String CNAME = "foo.test.google.fr";
  private static final String ECHO_DATA = "{\"payload\":\"aGVsbG8=\"}";

  @TempDir Path dir;

  private static JsonObject json(Cli r) {
    assertEquals(0, r.exitCode(), r.err());
    return JsonParser.parseString(r.out()).getAsJsonObject();
  }

  private Path cert(String name) throws IOException {
    Path p = dir.resolve(name);
    try (InputStream in = TlsTesting.loadCert(name)) {
      Files.copy(in, p, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
    return p;
  }

  /** The echo service and reflection on TLS (client certificates required) and shared memory. */
  private Server tlsServer() throws IOException {
    Path ca = cert("ca.pem");
    Path serverCert = cert("server1.pem");
    Path serverKey = cert("server1.key");
    return ShmServerBuilder.forPort(0)
        .addService(new BuiltinEcho())
        .addService(BuiltinEcho.reflectionV1())
        .configureTcp(n -> {
          try {
            n.sslContext(GrpcSslContexts.forServer(serverCert.toFile(), serverKey.toFile())
                .trustManager(ca.toFile()).clientAuth(ClientAuth.REQUIRE).build());
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        })
        .build().start();
  }

  @Test
  @Timeout(value = 2, unit = TimeUnit.MINUTES)
  void tlsWithCaCertClientCertAndServerName() throws Exception {
    Server server = tlsServer();
    try {
      String target = "localhost:" + server.getPort();
      String ca = cert("ca.pem").toString();
      JsonObject ok = json(Cli.run("--call", BuiltinEcho.CALL, "-d", ECHO_DATA, "-n", "20",
          "-c", "2", "--cacert", ca, "--cert", cert("client.pem").toString(), "--key",
          cert("client.key").toString(), "--cname", CNAME, "-O", "json", target));
      assertEquals(20, ok.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
      // TLS is the TCP path: shared memory is never used for a TLS channel.
      assertEquals(20, ok.getAsJsonObject("transportPathDistribution")
          .get(TransportPath.TCP.name()).getAsLong());
      assertTrue(ok.getAsJsonObject("options").get("tls").getAsBoolean());

      // The server requires a client certificate: without --cert/--key no call succeeds.
      Cli noClientCert = Cli.run("--call", BuiltinEcho.CALL, "-d", ECHO_DATA, "-n", "4",
          "-c", "1", "--cacert", ca, "--cname", CNAME, "--connect-timeout", "3s",
          "--protoset", protoset().toString(), "-O", "json", target);
      assertNoCallSucceeded(noClientCert);

      // Without the test CA the JVM's roots do not trust the server: it never gets ready.
      Cli untrusted = Cli.run("--call", BuiltinEcho.CALL, "-d", ECHO_DATA, "-n", "4",
          "--cert", cert("client.pem").toString(), "--key", cert("client.key").toString(),
          "--cname", CNAME, "--connect-timeout", "2s", target);
      assertEquals(2, untrusted.exitCode(), untrusted.out() + untrusted.err());
      assertTrue(untrusted.err().contains("could not connect to " + target + " within 2000 ms"),
          untrusted.err());
    } finally {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static void assertNoCallSucceeded(Cli r) {
    if (r.exitCode() == 2) {
      assertTrue(r.err().contains("could not connect"), r.err());
      return;
    }
    JsonObject o = json(r);
    assertFalse(o.getAsJsonObject("statusCodeDistribution").has("OK"), o.toString());
  }

  /** The echo service's descriptors, so a run needs no reflection call. */
  private Path protoset() throws IOException {
    Path p = dir.resolve("echo.protoset");
    Files.write(p, com.google.protobuf.DescriptorProtos.FileDescriptorSet.newBuilder()
        .addFile(echoFile().toProto())
        .build().toByteArray());
    return p;
  }

  private static com.google.protobuf.Descriptors.FileDescriptor echoFile() {
    return io.grpcshm.loadgen.echo.EchoRequest.getDescriptor().getFile();
  }

  @Test
  void tlsFlagsAreCheckedBeforeAnythingConnects() {
    String target = server.target();
    Cli both = Cli.run("--call", TestServer.CALL, "--insecure", "--cname", CNAME, target);
    assertEquals(2, both.exitCode());
    assertTrue(both.err().contains("exclusive"), both.err());
    Cli certOnly = Cli.run("--call", TestServer.CALL, "--cert", "x.pem", target);
    assertEquals(2, certOnly.exitCode());
    assertTrue(certOnly.err().contains("--cert and --key go together"), certOnly.err());
    Cli shm = Cli.run("--call", TestServer.CALL, "--skipTLS", "--transport", "shm", target);
    assertEquals(2, shm.exitCode());
    assertTrue(shm.err().contains("TLS is for the TCP path"), shm.err());
    Cli keepalive = Cli.run("--call", TestServer.CALL, "--keepalive", "-1s", target);
    assertEquals(2, keepalive.exitCode());
  }

  @Test
  @Timeout(value = 1, unit = TimeUnit.MINUTES)
  void connectTimeoutEndsARunWhoseServerIsNotThere() {
    long start = System.nanoTime();
    Cli r = Cli.run("--call", TestServer.CALL, "-d", "{}", "--transport", "tcp",
        "--connect-timeout", "1s", "localhost:1");
    assertEquals(2, r.exitCode(), r.out() + r.err());
    assertTrue(r.err().contains("could not connect to localhost:1 within 1000 ms"), r.err());
    assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(30));
  }

  @Test
  void keepaliveAndConnectTimeoutReachTheReport() {
    JsonObject o = json(Cli.run("--call", TestServer.CALL, "-d", "{\"name\":\"k\"}", "-n", "5",
        "-c", "1", "--keepalive", "30s", "--connect-timeout", "5s", "-O", "json",
        server.target()));
    assertEquals(5, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    assertEquals("PT30S", o.getAsJsonObject("options").get("keepalive").getAsString());
    assertEquals("PT5S", o.getAsJsonObject("options").get("connectTimeout").getAsString());
  }

  @Test
  void failedCallsAreTimedOnlyWithCountErrors() {
    // Round-robin: every other call fails with NOT_FOUND (5).
    String data = "[{\"name\":\"a\"},{\"name\":\"b\",\"failCode\":5}]";
    for (boolean countErrors : new boolean[] {false, true}) {
      List<String> args = new ArrayList<>(List.of("--call", TestServer.CALL, "-d", data,
          "-n", "40", "-c", "2", "-O", "json"));
      if (countErrors) {
        args.add("--count-errors");
      }
      args.add(server.target());
      JsonObject o = json(Cli.run(args.toArray(String[]::new)));
      assertEquals(40, o.get("count").getAsLong());
      assertEquals(20, o.getAsJsonObject("statusCodeDistribution").get("NOT_FOUND")
          .getAsLong());
      long timed = 0;
      for (JsonElement b : o.getAsJsonArray("histogram")) {
        timed += b.getAsJsonObject().get("count").getAsLong();
      }
      assertEquals(countErrors ? 40 : 20, timed, o.toString());
      assertEquals(countErrors, o.getAsJsonObject("options").get("countErrors").getAsBoolean());
    }
  }

  @Test
  @Timeout(value = 2, unit = TimeUnit.MINUTES)
  void cpusRestrictsTheProcessToThatManyCpus() throws Exception {
    // In a child JVM: the affinity applies to the whole process.
    List<String> command = new ArrayList<>(List.of(
        ProcessHandle.current().info().command().orElseThrow(),
        "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp",
        System.getProperty("java.class.path"), GrpcLoad.class.getName(),
        "--call", TestServer.CALL, "-d", "{\"name\":\"c\"}", "-n", "20", "-c", "2",
        "--cpus", "1", "-O", "json", server.target()));
    Process child = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD)
        .start();
    try {
      byte[] out = child.getInputStream().readAllBytes();
      assertTrue(child.waitFor(60, TimeUnit.SECONDS));
      assertEquals(0, child.exitValue(), new String(out, StandardCharsets.UTF_8));
      JsonObject o = JsonParser.parseString(new String(out, StandardCharsets.UTF_8))
          .getAsJsonObject();
      assertEquals(1, o.getAsJsonObject("options").get("cpus").getAsInt(), o.toString());
      assertEquals(20, o.getAsJsonObject("statusCodeDistribution").get("OK").getAsLong());
    } finally {
      child.destroyForcibly();
      child.waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void cpusBeyondWhatTheProcessMayUseIsRefused() {
    Cli r = Cli.run("--call", TestServer.CALL, "--cpus", "100000", server.target());
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("--cpus must be between 1 and"), r.err());
  }
}
