package io.grpcshm;

import io.grpc.CallOptions;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A client process for {@link NetnsTest}, run inside a network namespace: arg {@code directory}.
 * Prints PORT 0, then answers lines on stdin:
 * <ul>
 *   <li>{@code ask IP PORT AUTO|SHM_ONLY dir|nodir N}: N calls on a new channel, prints
 *       {@code ANSWER name path} (all N agreeing) or {@code ERROR code description};
 *   <li>{@code hang IP PORT}: starts a never-answered call over shared memory after a first
 *       successful one, prints {@code STARTED name path};
 *   <li>{@code killed}: prints {@code FAILED code millis}, the time from this line until the hung
 *       call failed (0 if it already had).
 * </ul>
 */
public final class NetnsClientMain {
  private NetnsClientMain() {}

  /**
   * Calls beyond a name: a 2 MiB unary echo (a payload block, maybe an extra segment whose memfd
   * crosses the namespaces) and a server stream of three 300 KB echoes. Null if all came back
   * intact, else what broke.
   */
  static String smoke(ManagedChannel ch) {
    byte[] big = new byte[2 << 20];
    java.util.concurrent.ThreadLocalRandom.current().nextBytes(big);
    byte[] back = ClientCalls.blockingUnaryCall(ch, EchoService.UNARY,
        CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), big);
    if (!java.util.Arrays.equals(big, back)) {
      return "2 MiB echo corrupted";
    }
    byte[] part = new byte[300_000];
    java.util.concurrent.ThreadLocalRandom.current().nextBytes(part);
    part[0] = 3;
    java.util.Iterator<byte[]> it = ClientCalls.blockingServerStreamingCall(ch,
        EchoService.SERVER_STREAM, CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS),
        part);
    int n = 0;
    while (it.hasNext()) {
      if (!java.util.Arrays.equals(part, it.next())) {
        return "stream message " + n + " corrupted";
      }
      n++;
    }
    return n == 3 ? null : "stream ended after " + n + " of 3";
  }

  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    System.out.println("PORT 0");
    System.out.flush();
    BufferedReader in = new BufferedReader(
        new InputStreamReader(System.in, StandardCharsets.UTF_8));
    CompletableFuture<StatusRuntimeException> hung = null;
    ManagedChannel hangChannel = null;
    String line;
    while ((line = in.readLine()) != null) {
      String[] w = line.split(" ");
      switch (w[0]) {
        case "ask" -> {
          ManagedChannel ch = ShmChannelBuilder.forAddress(w[1], Integer.parseInt(w[2]))
              .usePlaintext()
              .transportMode(TransportMode.valueOf(w[3]))
              .rendezvousDirectory(w[4].equals("dir") ? dir : null)
              .build();
          try {
            String answer = null;
            for (int i = 0; i < Integer.parseInt(w[5]); i++) {
              EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
              byte[] name = ClientCalls.blockingUnaryCall(
                  io.grpc.ClientInterceptors.intercept(ch, capture), NetnsServerMain.WHO,
                  CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]);
              String a = new String(name, StandardCharsets.UTF_8) + " "
                  + TransportPath.of(capture.last.get());
              if (answer != null && !answer.equals(a)) {
                a = "MIXED " + answer + " / " + a;
              }
              answer = a;
            }
            String broken = smoke(ch);
            System.out.println(broken == null ? "ANSWER " + answer : "ERROR SMOKE " + broken);
          } catch (StatusRuntimeException e) {
            System.out.println("ERROR " + e.getStatus().getCode() + " "
                + e.getStatus().getDescription());
          } finally {
            ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
          }
        }
        case "hang" -> {
          hangChannel = ShmChannelBuilder.forAddress(w[1], Integer.parseInt(w[2]))
              .usePlaintext()
              .transportMode(TransportMode.SHM_ONLY)
              .rendezvousDirectory(dir)
              .build();
          EchoService.AttributeCapture capture = new EchoService.AttributeCapture();
          io.grpc.Channel c = io.grpc.ClientInterceptors.intercept(hangChannel, capture);
          byte[] name = ClientCalls.blockingUnaryCall(c, NetnsServerMain.WHO,
              CallOptions.DEFAULT.withDeadlineAfter(20, TimeUnit.SECONDS), new byte[0]);
          CompletableFuture<StatusRuntimeException> f = new CompletableFuture<>();
          ManagedChannel hc = hangChannel;
          Thread.ofPlatform().daemon().start(() -> {
            try {
              ClientCalls.blockingUnaryCall(hc, NetnsServerMain.HANG,
                  CallOptions.DEFAULT.withDeadlineAfter(30, TimeUnit.SECONDS), new byte[0]);
              f.complete(null);
            } catch (StatusRuntimeException e) {
              f.complete(e);
            }
          });
          hung = f;
          Thread.sleep(300); // the call reaches the server
          System.out.println("STARTED " + new String(name, StandardCharsets.UTF_8) + " "
              + TransportPath.of(capture.last.get()));
        }
        case "killed" -> {
          long t0 = System.nanoTime();
          StatusRuntimeException e = hung.get(30, TimeUnit.SECONDS);
          long ms = (System.nanoTime() - t0) / 1_000_000;
          System.out.println("FAILED " + (e == null ? "OK" : e.getStatus().getCode()) + " " + ms);
          hangChannel.shutdownNow();
        }
        default -> System.out.println("UNKNOWN " + line);
      }
      System.out.flush();
    }
    System.exit(0);
  }
}
