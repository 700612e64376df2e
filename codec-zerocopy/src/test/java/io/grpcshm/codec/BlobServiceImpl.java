package io.grpcshm.codec;

import io.grpc.stub.StreamObserver;
import io.grpcshm.codec.testing.Blob;
import io.grpcshm.codec.testing.BlobServiceGrpc;
import io.grpcshm.codec.testing.Counters;
import io.grpcshm.codec.testing.Digest;
import java.util.concurrent.atomic.AtomicReference;

/** Releases every request explicitly, as the contract asks; records what the last one was. */
final class BlobServiceImpl extends BlobServiceGrpc.BlobServiceImplBase {
  /** Whether the last request's payload was a view of direct (transport) memory. */
  final AtomicReference<Boolean> lastPayloadDirect = new AtomicReference<>();
  /** Whether the last echoed request's payload was a view of shared memory. */
  final AtomicReference<Boolean> lastPayloadShared = new AtomicReference<>();

  @Override
  public void echo(Blob request, StreamObserver<Blob> responses) {
    try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
      lastPayloadDirect.set(TestMessages.isDirect(blob.get().getPayload()));
      lastPayloadShared.set(TestMessages.inSharedMemory(blob.get().getPayload()));
      // grpc serialises the response during onNext, so the request may be released after it.
      responses.onNext(blob.get());
    }
    responses.onCompleted();
  }

  @Override
  public void summarize(Blob request, StreamObserver<Digest> responses) {
    Digest digest;
    try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
      lastPayloadDirect.set(TestMessages.isDirect(blob.get().getPayload()));
      digest = TestMessages.digest(blob.get());
    }
    responses.onNext(digest);
    responses.onCompleted();
  }

  @Override
  public StreamObserver<Blob> chat(StreamObserver<Blob> responses) {
    return new StreamObserver<>() {
      @Override
      public void onNext(Blob request) {
        try (ZeroCopyMessage<Blob> blob = ZeroCopyMessage.of(request)) {
          responses.onNext(blob.get());
        }
      }

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {
        responses.onCompleted();
      }
    };
  }

  @Override
  public void count(Counters request, StreamObserver<Counters> responses) {
    responses.onNext(request);
    responses.onCompleted();
  }
}
