package io.grpcshm.examples;

import io.grpc.MethodDescriptor;
import io.grpc.ServerServiceDefinition;
import io.grpc.stub.ServerCalls;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * A byte[] service with two unary methods: {@code Echo} returns the request, {@code Ack} returns
 * a {@value #ACK_BYTES}-byte acknowledgement of it. Ack is for measuring one direction of a large
 * transfer; it still proves the server received the right bytes (see {@link #ack}).
 */
final class EchoService {
  static final String SERVICE = "grpcshm.examples.Echo";
  static final int ACK_BYTES = 100;
  /** Big enough for the 16 MiB payloads (grpc's default limit is 4 MiB). */
  static final int MAX_MESSAGE_BYTES = 80 << 20;

  static final MethodDescriptor<byte[], byte[]> ECHO = unary("Echo");
  static final MethodDescriptor<byte[], byte[]> ACK = unary("Ack");
  /** Bidi streaming: every request message is echoed back on the same stream. */
  static final MethodDescriptor<byte[], byte[]> ECHO_STREAM =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.BIDI_STREAMING)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "EchoStream"))
          .setRequestMarshaller(BytesMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();
  /** Like Ack, but the server digests the request as a stream (see StreamingDigestMarshaller). */
  static final MethodDescriptor<byte[], byte[]> DIGEST =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Digest"))
          .setRequestMarshaller(StreamingDigestMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();

  /**
   * Like Ack, but the server reads every byte in place when the transport allows it and answers
   * a CRC32C of the whole request (see InPlaceChecksumMarshaller).
   */
  static final MethodDescriptor<byte[], byte[]> CHECKSUM =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Checksum"))
          .setRequestMarshaller(InPlaceChecksumMarshaller.INSTANCE)
          .setResponseMarshaller(BytesMarshaller.INSTANCE)
          .build();

  private EchoService() {}

  static ServerServiceDefinition definition() {
    return ServerServiceDefinition.builder(SERVICE)
        .addMethod(ECHO, ServerCalls.asyncUnaryCall((request, responses) -> {
          responses.onNext(request);
          responses.onCompleted();
        }))
        .addMethod(ECHO_STREAM, ServerCalls.asyncBidiStreamingCall(FlowControlledEcho::new))
        .addMethod(ACK, ServerCalls.asyncUnaryCall((request, responses) -> {
          responses.onNext(ack(request));
          responses.onCompleted();
        }))
        .addMethod(CHECKSUM, ServerCalls.asyncUnaryCall((ack, responses) -> {
          responses.onNext(ack); // computed by the marshaller while reading
          responses.onCompleted();
        }))
        .addMethod(DIGEST, ServerCalls.asyncUnaryCall((digest, responses) -> {
          responses.onNext(digest); // the marshaller already computed the ack while reading
          responses.onCompleted();
        }))
        .build();
  }

  /**
   * {@value #ACK_BYTES} bytes: the request's length, a fingerprint of ~4096 bytes sampled across
   * the whole request, then its first bytes. Cheap enough not to distort a 16 MiB measurement,
   * yet a truncated, shifted or stale payload gives a different ack. The client computes the
   * expected ack locally with this same method.
   */
  static byte[] ack(byte[] request) {
    int stride = Math.max(1, request.length / 4096);
    long fingerprint = 1469598103934665603L;
    for (int i = 0; i < request.length; i += stride) {
      fingerprint = (fingerprint ^ request[i]) * 1099511628211L;
    }
    if (request.length > 0) {
      fingerprint = (fingerprint ^ request[request.length - 1]) * 1099511628211L;
    }
    ByteBuffer ack = ByteBuffer.allocate(ACK_BYTES).putInt(request.length).putLong(fingerprint);
    ack.put(request, 0, Math.min(request.length, ack.remaining()));
    return ack.array();
  }

  /** {@value #ACK_BYTES} bytes: the request's length and the CRC32C of all its bytes. */
  static byte[] checksumAck(int length, long crc32c) {
    return ByteBuffer.allocate(ACK_BYTES).putInt(length).putLong(crc32c).array();
  }

  /** The ack {@code method} answers to {@code request}. */
  static byte[] expectedAck(MethodDescriptor<byte[], byte[]> method, byte[] request) {
    if (method == CHECKSUM) {
      java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
      crc.update(request);
      return checksumAck(request.length, crc.getValue());
    }
    return ack(request);
  }

  /** True when {@code response} is what {@code method} should answer to {@code request}. */
  static boolean isExpected(MethodDescriptor<byte[], byte[]> method, byte[] request,
      byte[] expectedAck, byte[] response) {
    // ACK and DIGEST answer the same bytes; CHECKSUM its own (expectedAck).
    return method == ECHO ? Arrays.equals(request, response) : Arrays.equals(expectedAck, response);
  }

  private static MethodDescriptor<byte[], byte[]> unary(String name) {
    return MethodDescriptor.<byte[], byte[]>newBuilder()
        .setType(MethodDescriptor.MethodType.UNARY)
        .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, name))
        .setRequestMarshaller(BytesMarshaller.INSTANCE)
        .setResponseMarshaller(BytesMarshaller.INSTANCE)
        .build();
  }

  /**
   * The bidi echo, pacing its reads by its writes: it asks for the next request only while its
   * response stream is ready (grpc's manual flow control). An echo that read on regardless would
   * queue every response the client has no window for in the server's heap (with a fast
   * transport, hundreds of MiB within seconds), and the garbage collections that queue causes
   * would be charged to whatever the server does next.
   */
  private static final class FlowControlledEcho implements io.grpc.stub.StreamObserver<byte[]> {
    private final io.grpc.stub.ServerCallStreamObserver<byte[]> responses;
    /** A request is owed: the last one arrived while the responses were not ready. */
    private boolean requestOwed;

    FlowControlledEcho(io.grpc.stub.StreamObserver<byte[]> responses) {
      this.responses = (io.grpc.stub.ServerCallStreamObserver<byte[]>) responses;
      this.responses.disableAutoRequest();
      this.responses.setOnReadyHandler(this::onReady);
      this.responses.request(1);
    }

    // grpc calls these serially (the call's serializing executor), so no lock is needed.
    private void onReady() {
      if (requestOwed && responses.isReady()) {
        requestOwed = false;
        responses.request(1);
      }
    }

    @Override
    public void onNext(byte[] message) {
      responses.onNext(message);
      if (responses.isReady()) {
        responses.request(1);
      } else {
        requestOwed = true;
      }
    }

    @Override
    public void onError(Throwable t) {}

    @Override
    public void onCompleted() {
      responses.onCompleted();
    }
  }
}
