package io.grpcshm.examples;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.grpcshm.codec.ZeroCopyMessage;
import io.grpcshm.examples.pipeline.InferenceGrpc;
import io.grpcshm.examples.pipeline.InferenceResult;
import io.grpcshm.examples.pipeline.TensorBatch;

/**
 * The pipeline's inference side: runs {@link SyntheticModel} over each batch it receives. Written
 * as an ordinary grpc service; registered through {@code ZeroCopyServices.rewrite}, a batch that
 * arrives over shared memory is parsed in place, so the model reads the tensor straight from the
 * transport's memory. Each request is closed (its memory released to the sender) as soon as the
 * result is computed, before the answer is sent.
 */
final class InferenceService extends InferenceGrpc.InferenceImplBase {
  /** Also the server's and the clients' maximum message size: 199 images are 119.8 MB. */
  static final int MAX_MESSAGE_BYTES = 256 << 20;

  @Override
  public void infer(TensorBatch request, StreamObserver<InferenceResult> responses) {
    InferenceResult result;
    try {
      result = process(request);
    } catch (SyntheticModel.InvalidTensorException e) {
      responses.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asException());
      return;
    }
    responses.onNext(result);
    responses.onCompleted();
  }

  @Override
  public StreamObserver<TensorBatch> inferStream(StreamObserver<InferenceResult> responses) {
    return new StreamObserver<>() {
      private boolean failed;

      @Override
      public void onNext(TensorBatch request) {
        if (failed) {
          ZeroCopyMessage.of(request).close();
          return;
        }
        try {
          responses.onNext(process(request));
        } catch (SyntheticModel.InvalidTensorException e) {
          failed = true;
          responses.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asException());
        }
      }

      @Override
      public void onError(Throwable t) {
        // The client cancelled or the connection broke: nothing to answer.
      }

      @Override
      public void onCompleted() {
        if (!failed) {
          responses.onCompleted();
        }
      }
    };
  }

  /** Runs the model and releases the request's transport memory, whatever happens. */
  private static InferenceResult process(TensorBatch request) {
    try (ZeroCopyMessage<TensorBatch> batch = ZeroCopyMessage.of(request)) {
      boolean inPlace = batch.isAliased();
      long start = System.nanoTime();
      InferenceResult.Builder result = SyntheticModel.run(batch.get());
      return result.setComputeNanos(System.nanoTime() - start).setReadInPlace(inPlace).build();
    }
  }
}
