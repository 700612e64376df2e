package io.grpcshm.internal.transport;

import io.grpc.Status;
import io.grpc.internal.DisconnectError;
import io.grpc.internal.ManagedClientTransport;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/** Records a client transport's listener events, in order, for lifecycle tests. */
public class RecordingTransportListener implements ManagedClientTransport.Listener {
  public final CountDownLatch ready = new CountDownLatch(1);
  public final CountDownLatch shutdown = new CountDownLatch(1);
  public final CountDownLatch terminated = new CountDownLatch(1);
  public final AtomicReference<Status> shutdownStatus = new AtomicReference<>();
  public final StringBuffer order = new StringBuffer();

  @Override
  public void transportShutdown(Status s, DisconnectError e) {
    order.append("shutdown;");
    shutdownStatus.set(s);
    shutdown.countDown();
  }

  @Override
  public void transportTerminated() {
    order.append("terminated;");
    terminated.countDown();
  }

  @Override
  public void transportReady() {
    order.append("ready;");
    ready.countDown();
  }

  @Override
  public void transportInUse(boolean inUse) {}
}
