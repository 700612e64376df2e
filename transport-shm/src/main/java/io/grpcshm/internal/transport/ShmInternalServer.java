package io.grpcshm.internal.transport;

import com.google.errorprone.annotations.concurrent.GuardedBy;
import io.grpc.InternalChannelz.SocketStats;
import io.grpc.Status;
import io.grpc.InternalInstrumented;
import io.grpc.ServerStreamTracer;
import io.grpc.internal.InternalServer;
import io.grpc.internal.ServerListener;
import io.grpc.internal.ServerTransportListener;
import io.grpcshm.ShmAddress;
import io.grpcshm.internal.loop.Workers;
import io.grpcshm.internal.handshake.Handshakes;
import io.grpcshm.internal.handshake.ShmHandshakeException;
import io.grpcshm.internal.nativeio.UnixSeqpacketSocket;
import java.io.IOException;
import java.net.SocketAddress;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Accepts shared-memory connections on the rendezvous socket and hands each one, once its
 * handshake passes, to grpc's server as a {@link ShmServerTransport}.
 */
public final class ShmInternalServer implements InternalServer {
  private static final Logger log = Logger.getLogger(ShmInternalServer.class.getName());
  /** Handshakes in progress at once; more clients wait in the socket's backlog. */
  private static final int MAX_CONCURRENT_HANDSHAKES = 32;

  private final String rendezvous;
  private final ShmTransportConfig config;
  private final List<? extends ServerStreamTracer.Factory> tracerFactories;
  private final Semaphore handshakes = new Semaphore(MAX_CONCURRENT_HANDSHAKES);
  private UnixSeqpacketSocket listenSocket;
  private ServerListener listener;
  /**
   * Set, under {@link #handOver}, before grpc hears serverShutdown: a handshake that finishes
   * later must not create a transport, which grpc would never shut down.
   */
  @GuardedBy("handOver") private boolean stopped;
  private final Object handOver = new Object();
  private Thread acceptor;

  public ShmInternalServer(String rendezvous, ShmTransportConfig config,
      List<? extends ServerStreamTracer.Factory> tracerFactories) {
    this.rendezvous = rendezvous;
    this.config = config;
    this.tracerFactories = tracerFactories;
  }

  @Override
  public void start(ServerListener listener) throws IOException {
    this.listener = listener;
    this.listenSocket = UnixSeqpacketSocket.listen(rendezvous, 128);
    acceptor = new Thread(this::acceptLoop, "grpc-shm-accept-" + rendezvous);
    acceptor.setDaemon(true);
    acceptor.start();
  }

  private void acceptLoop() {
    try {
      while (true) {
        UnixSeqpacketSocket socket = listenSocket.accept();
        if (socket == null) {
          break;
        }
        handshakes.acquireUninterruptibly();
        Workers.get().execute(() -> {
          try {
            establish(socket);
          } finally {
            handshakes.release();
          }
        });
      }
    } catch (IOException | RuntimeException e) {
      log.log(Level.WARNING, "shared-memory accept loop on " + rendezvous + " failed", e);
    } finally {
      listenSocket.close();
      synchronized (handOver) {
        stopped = true;
      }
      listener.serverShutdown();
    }
  }

  private void establish(UnixSeqpacketSocket socket) {
    Handshakes.Established established;
    try {
      established = Handshakes.server(socket, config);
    } catch (ShmHandshakeException e) {
      log.log(Level.FINE, "shared-memory client refused on {0}: {1}",
          new Object[] {rendezvous, e.status()});
      return;
    }
    ShmConnection connection = new ShmConnection("server:" + rendezvous, established.socket(),
        established.mapping(), established.layout(), true, config,
        established.peerStreamWindow());
    ShmAddress remote = new ShmAddress(rendezvous, established.peer().pid(),
        established.peer().uid());
    ShmServerTransport transport;
    ServerTransportListener transportListener;
    synchronized (handOver) {
      if (stopped) {
        connection.abandon(Status.UNAVAILABLE.withDescription("server shut down"));
        return;
      }
      transport = new ShmServerTransport(connection, ShmAddress.listening(rendezvous), remote,
          tracerFactories, config);
      transportListener = listener.transportCreated(transport);
    }
    transport.start(transportListener);
  }

  @Override
  public void shutdown() {
    if (listenSocket != null) {
      listenSocket.shutdown();
    }
  }

  @Override
  public SocketAddress getListenSocketAddress() {
    return ShmAddress.listening(rendezvous);
  }

  @Override
  public InternalInstrumented<SocketStats> getListenSocketStats() {
    return null;
  }

  @Override
  public List<? extends SocketAddress> getListenSocketAddresses() {
    return List.of(getListenSocketAddress());
  }

  @Override
  public List<InternalInstrumented<SocketStats>> getListenSocketStatsList() {
    return null;
  }
}
