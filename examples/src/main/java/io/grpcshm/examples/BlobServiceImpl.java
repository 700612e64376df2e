package io.grpcshm.examples;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import io.grpcshm.codec.ZeroCopyMessage;
import io.grpcshm.examples.blob.Ack;
import io.grpcshm.examples.blob.AllocatedReply;
import io.grpcshm.examples.blob.AllocatedRequest;
import io.grpcshm.examples.blob.Blob;
import io.grpcshm.examples.blob.BlobServiceGrpc;
import java.lang.management.ManagementFactory;
import javax.management.JMException;
import javax.management.ObjectName;

/**
 * Reads every upload (a sampled fingerprint of the payload, the values, the tags) and answers an
 * {@link Ack} the client checks. Written as an ordinary grpc service; with the zero-copy
 * marshaller the payload is an alias of shared memory, released as soon as the ack is computed.
 */
final class BlobServiceImpl extends BlobServiceGrpc.BlobServiceImplBase {
  private static final com.sun.management.ThreadMXBean THREADS =
      (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

  @Override
  public void upload(Blob request, StreamObserver<Ack> responses) {
    Ack ack;
    try (ZeroCopyMessage<Blob> message = ZeroCopyMessage.of(request)) {
      ack = ack(message.get());
    }
    responses.onNext(ack);
    responses.onCompleted();
  }

  @Override
  public void allocated(AllocatedRequest request, StreamObserver<AllocatedReply> responses) {
    responses.onNext(AllocatedReply.newBuilder()
        .setBytes(THREADS.getTotalThreadAllocatedBytes())
        .setReceivePoolResidentBytes(receivePool("ResidentBytes"))
        .setReceivePoolLent(receivePool("Lent"))
        .setReceivePoolRefused(receivePool("Refused"))
        .setReceivePoolReleased(receivePool("Released")).build());
    responses.onCompleted();
  }

  /** An attribute of the transport's off-heap receive pool (JMX), 0 if there is none yet. */
  private static long receivePool(String attribute) {
    try {
      return (Long) ManagementFactory.getPlatformMBeanServer().getAttribute(
          new ObjectName("io.grpcshm:type=ProtobufReceivePool"), attribute);
    } catch (JMException e) {
      return 0;
    }
  }

  /** What the server answers; the client computes the same locally to check it. */
  static Ack ack(Blob blob) {
    ByteString payload = blob.getPayload();
    int length = payload.size();
    int stride = Math.max(1, length / 4096);
    long fingerprint = 1469598103934665603L;
    for (int i = 0; i < length; i += stride) {
      fingerprint = (fingerprint ^ payload.byteAt(i)) * 1099511628211L;
    }
    long sum = 0;
    for (int i = 0; i < blob.getValuesCount(); i++) {
      sum += blob.getValues(i);
    }
    long tags = 0;
    for (int i = 0; i < blob.getTagsCount(); i++) {
      tags += blob.getTags(i).length();
    }
    return Ack.newBuilder().setPayloadLength(length).setFingerprint(fingerprint)
        .setValuesSum(sum).setTagsLength(tags).build();
  }
}
