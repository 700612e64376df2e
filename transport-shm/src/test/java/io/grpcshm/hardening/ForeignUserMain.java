package io.grpcshm.hardening;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpcshm.ShmChannelBuilder;
import io.grpcshm.ShmServerBuilder;
import io.grpcshm.TransportMode;
import io.grpcshm.childjvm.ChildJvm;
import io.grpcshm.internal.nativeio.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Runs under another uid (setpriv) for SecurityTest. {@code client <port> [serverUid]}: one SHM_ONLY call
 * (trusting servers of our own uid, or of serverUid),
 * prints {@code UID u}, {@code STATUS code description} and {@code MAPPINGS n} (grpc-shm memfd
 * mappings in this process afterwards). {@code server}: prints {@code PORT n}, serves until stdin
 * closes.
 */
public final class ForeignUserMain {
  private ForeignUserMain() {}

  public static void main(String[] args) throws Exception {
    if (args[0].equals("server")) {
      Server server = ShmServerBuilder.forPort(0)
          .addService(Hardening.service(new Hardening.Stats())).build().start();
      ChildJvm.reportPortAndServe(server.getPort(),
          () -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    }
    System.out.println("UID " + Linux.getuid());
    ManagedChannel channel = ShmChannelBuilder.forAddress("localhost",
        Integer.parseInt(args[1])).usePlaintext().transportMode(TransportMode.SHM_ONLY)
        .serverAuthorizationPolicy(args.length > 2
            ? io.grpcshm.PeerAuthorizationPolicy.uids(Integer.parseInt(args[2]))
            : io.grpcshm.PeerAuthorizationPolicy.sameUser())
        .build();
    String status;
    try {
      Calls.echo(channel, 100_000);
      status = "OK";
    } catch (StatusRuntimeException e) {
      status = e.getStatus().getCode() + " " + e.getStatus().getDescription();
    }
    long mappings;
    try (var lines = Files.lines(Path.of("/proc/self/maps"))) {
      mappings = lines.filter(l -> l.contains("memfd:grpc-shm")).count();
    }
    System.out.println("STATUS " + status);
    System.out.println("MAPPINGS " + mappings);
    System.out.flush();
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    System.exit(0);
  }
}
