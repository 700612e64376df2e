package io.grpcshm.hardening;

import io.grpc.Context;
import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.ServerCalls;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;

/**
 * A checksummed test service with all four call types. Every message is
 * {@code seq (i64) · crc32c(payload) (i32) · payload}; both sides verify every message, so a
 * lost, duplicated, reordered or corrupted message is detected where it arrives.
 */
public final class Hardening {
  public static final String SERVICE = "grpcshm.hardening.Hardening";
  public static final int HEADER = 12;

  /** Raw bytes in and out: for methods that must stay away from any protobuf marshaller. */
  public static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<>() {
    @Override
    public InputStream stream(byte[] value) {
      return new ByteArrayInputStream(value);
    }

    @Override
    public byte[] parse(InputStream stream) {
      try {
        return stream.readAllBytes();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  };

  /** Echo; a corrupt request fails with DATA_LOSS. */
  public static final MethodDescriptor<byte[], byte[]> UNARY = method("Unary",
      MethodDescriptor.MethodType.UNARY);
  /** Never answers; its cancellation is recorded. */
  public static final MethodDescriptor<byte[], byte[]> HANG = method("Hang",
      MethodDescriptor.MethodType.UNARY);
  /** Request payload {@code count (i32, <0 = forever) · size (i32)}; flow-controlled sender. */
  public static final MethodDescriptor<byte[], byte[]> SERVER_STREAM = method("ServerStream",
      MethodDescriptor.MethodType.SERVER_STREAMING);
  /** Verifies seq 0,1,2,… and checksums; answers payload {@code count (i64) · bytes (i64)}. */
  public static final MethodDescriptor<byte[], byte[]> CLIENT_STREAM = method("ClientStream",
      MethodDescriptor.MethodType.CLIENT_STREAMING);
  /** Echoes each verified message. */
  public static final MethodDescriptor<byte[], byte[]> BIDI = method("Bidi",
      MethodDescriptor.MethodType.BIDI_STREAMING);

  private static MethodDescriptor<byte[], byte[]> method(String name,
      MethodDescriptor.MethodType type) {
    return MethodDescriptor.<byte[], byte[]>newBuilder().setType(type)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name))
        .setRequestMarshaller(BYTES).setResponseMarshaller(BYTES).build();
  }

  // ---- messages -------------------------------------------------------------------------------

  public static byte[] message(long seq, int payloadSize) {
    byte[] m = new byte[HEADER + payloadSize];
    ThreadLocalRandom.current().nextBytes(m);
    return seal(seq, m);
  }

  /** Writes seq and the checksum of bytes [HEADER, end) into {@code m}. */
  public static byte[] seal(long seq, byte[] m) {
    ByteBuffer.wrap(m).putLong(0, seq).putInt(8, crc(m));
    return m;
  }

  public static byte[] message(long seq, ByteBuffer payload) {
    byte[] m = new byte[HEADER + payload.remaining()];
    payload.duplicate().get(m, HEADER, payload.remaining());
    return seal(seq, m);
  }

  private static int crc(byte[] m) {
    CRC32C c = new CRC32C();
    c.update(m, HEADER, m.length - HEADER);
    return (int) c.getValue();
  }

  /** The sequence number of a verified message; throws if it is corrupt. */
  public static long verify(byte[] m) {
    if (m.length < HEADER) {
      throw new IllegalStateException("message of " + m.length + " bytes is truncated");
    }
    ByteBuffer b = ByteBuffer.wrap(m);
    if (b.getInt(8) != crc(m)) {
      throw new IllegalStateException("checksum mismatch, seq " + b.getLong(0) + ", "
          + m.length + " bytes");
    }
    return b.getLong(0);
  }

  public static ByteBuffer payload(byte[] m) {
    return ByteBuffer.wrap(m, HEADER, m.length - HEADER).slice();
  }

  public static byte[] streamRequest(int count, int size) {
    return message(0, ByteBuffer.allocate(8).putInt(count).putInt(size).flip());
  }

  // ---- server ---------------------------------------------------------------------------------

  /** What the server saw: corrupt messages, cancellations (time and status), active calls. */
  public static final class Stats {
    public final AtomicLong corrupt = new AtomicLong();
    public final AtomicLong messagesIn = new AtomicLong();
    public final AtomicLong messagesOut = new AtomicLong();
    public final AtomicLong bytesIn = new AtomicLong();
    public final AtomicInteger active = new AtomicInteger();
    public final Queue<long[]> cancellations = new ConcurrentLinkedQueue<>(); // {nanoTime, code}

    void cancelled() {
      Throwable cause = Context.current().cancellationCause();
      int code = cause == null ? -1 : Status.fromThrowable(cause).getCode().value();
      cancellations.add(new long[] {System.nanoTime(), code});
    }
  }

  public static ServerServiceDefinition service(Stats stats) {
    return ServerServiceDefinition.builder(SERVICE)
        .addMethod(UNARY, ServerCalls.asyncUnaryCall((req, obs) -> {
          try {
            verify(req);
            stats.messagesIn.incrementAndGet();
            stats.bytesIn.addAndGet(req.length);
          } catch (IllegalStateException e) {
            stats.corrupt.incrementAndGet();
            obs.onError(Status.DATA_LOSS.withDescription(e.getMessage()).asRuntimeException());
            return;
          }
          obs.onNext(req);
          obs.onCompleted();
        }))
        .addMethod(HANG, ServerCalls.asyncUnaryCall((req, obs) -> {
          ServerCallStreamObserver<byte[]> o = (ServerCallStreamObserver<byte[]>) obs;
          stats.active.incrementAndGet();
          o.setOnCancelHandler(() -> {
            stats.cancelled();
            stats.active.decrementAndGet();
          });
        }))
        .addMethod(SERVER_STREAM, ServerCalls.asyncServerStreamingCall((req, obs) -> {
          verify(req);
          ByteBuffer p = payload(req);
          int count = p.getInt();
          int size = p.getInt();
          ServerCallStreamObserver<byte[]> o = (ServerCallStreamObserver<byte[]>) obs;
          stats.active.incrementAndGet();
          byte[] template = message(0, size);
          Runnable pump = new Runnable() {
            long next;
            boolean done;

            @Override
            public synchronized void run() {
              while (!done && !o.isCancelled() && o.isReady() && (count < 0 || next < count)) {
                byte[] m = template.clone();
                ByteBuffer.wrap(m).putLong(0, next++);
                o.onNext(m);
                stats.messagesOut.incrementAndGet();
              }
              if (!done && count >= 0 && next == count) {
                done = true;
                stats.active.decrementAndGet();
                o.onCompleted();
              }
            }
          };
          o.setOnCancelHandler(() -> {
            stats.cancelled();
            stats.active.decrementAndGet();
          });
          o.setOnReadyHandler(pump);
          pump.run();
        }))
        .addMethod(CLIENT_STREAM, ServerCalls.asyncClientStreamingCall(obs -> {
          ServerCallStreamObserver<byte[]> o = (ServerCallStreamObserver<byte[]>) obs;
          stats.active.incrementAndGet();
          o.setOnCancelHandler(() -> {
            stats.cancelled();
            stats.active.decrementAndGet();
          });
          return new StreamObserver<>() {
            long expected;
            long bytes;
            String error;

            @Override
            public void onNext(byte[] m) {
              try {
                long seq = verify(m);
                if (seq != expected && error == null) {
                  error = "expected seq " + expected + ", got " + seq;
                }
              } catch (IllegalStateException e) {
                stats.corrupt.incrementAndGet();
                error = e.getMessage();
              }
              expected++;
              bytes += m.length;
              stats.messagesIn.incrementAndGet();
              stats.bytesIn.addAndGet(m.length);
            }

            @Override
            public void onError(Throwable t) {}

            @Override
            public void onCompleted() {
              stats.active.decrementAndGet();
              if (error != null) {
                o.onError(Status.DATA_LOSS.withDescription(error).asRuntimeException());
                return;
              }
              o.onNext(message(0, ByteBuffer.allocate(16).putLong(expected).putLong(bytes)
                  .flip()));
              o.onCompleted();
            }
          };
        }))
        .addMethod(BIDI, ServerCalls.asyncBidiStreamingCall(obs -> {
          ServerCallStreamObserver<byte[]> o = (ServerCallStreamObserver<byte[]>) obs;
          stats.active.incrementAndGet();
          o.setOnCancelHandler(() -> {
            stats.cancelled();
            stats.active.decrementAndGet();
          });
          return new StreamObserver<>() {
            @Override
            public void onNext(byte[] m) {
              try {
                verify(m);
              } catch (IllegalStateException e) {
                stats.corrupt.incrementAndGet();
                o.onError(Status.DATA_LOSS.withDescription(e.getMessage()).asRuntimeException());
                return;
              }
              stats.messagesIn.incrementAndGet();
              stats.bytesIn.addAndGet(m.length);
              o.onNext(m);
              stats.messagesOut.incrementAndGet();
            }

            @Override
            public void onError(Throwable t) {}

            @Override
            public void onCompleted() {
              stats.active.decrementAndGet();
              o.onCompleted();
            }
          };
        }))
        .build();
  }

  private Hardening() {}
}
