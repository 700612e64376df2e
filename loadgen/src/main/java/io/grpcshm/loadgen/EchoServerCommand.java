package io.grpcshm.loadgen;

import io.grpc.Server;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code grpc-load echo-server}: serves the built-in echo service until the process is killed. */
@Command(name = "echo-server", mixinStandardHelpOptions = true,
    description = "Serves grpcshm.loadgen.Echo/Echo (with server reflection) over TCP and shared "
        + "memory, for trying grpc-load and compare against another process.")
final class EchoServerCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--port", defaultValue = "50051", description = "TCP port (default: 50051).")
  int port;

  @Override
  public Integer call() throws Exception {
    Server server = BuiltinEcho.start(port);
    spec.commandLine().getOut().println("echo-server: listening on port " + server.getPort()
        + " (TCP and " + io.grpcshm.ShmAddress.defaultRendezvous(server.getPort()) + "), call "
        + BuiltinEcho.CALL);
    spec.commandLine().getOut().flush();
    Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
    server.awaitTermination();
    return 0;
  }
}
