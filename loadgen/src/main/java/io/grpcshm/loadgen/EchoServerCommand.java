package io.grpcshm.loadgen;

import io.grpc.Server;
import io.grpc.protobuf.services.HealthStatusManager;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code grpc-load echo-server}: serves the built-in echo service until the process is killed. */
@Command(name = "echo-server", mixinStandardHelpOptions = true,
    description = "Serves grpcshm.loadgen.Echo/Echo over TCP and shared memory, with server "
        + "reflection (v1 and v1alpha) and grpc.health.v1.Health, for trying grpc-load, compare "
        + "and other gRPC tools against another process.")
final class EchoServerCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--port", defaultValue = "50051", description = "TCP port (default: 50051).")
  int port;

  @Option(names = "--echo-metadata", description = "Send each call's request headers back as "
      + "its response headers (except content-type, user-agent, te and grpc-*).")
  boolean echoMetadata;

  @Override
  public Integer call() throws Exception {
    HealthStatusManager health = new HealthStatusManager();
    Server server = BuiltinEcho.start(port, echoMetadata, health);
    spec.commandLine().getOut().println("echo-server: listening on port " + server.getPort()
        + " (TCP and " + io.grpcshm.ShmAddress.defaultRendezvous(server.getPort()) + "), call "
        + BuiltinEcho.CALL);
    spec.commandLine().getOut().flush();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      health.enterTerminalState(); // health watchers hear NOT_SERVING before the server goes
      server.shutdownNow();
    }));
    server.awaitTermination();
    return 0;
  }
}
