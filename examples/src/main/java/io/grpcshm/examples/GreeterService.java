package io.grpcshm.examples;

import io.grpc.stub.StreamObserver;
import io.grpcshm.examples.hello.GreeterGrpc;
import io.grpcshm.examples.hello.HelloReply;
import io.grpcshm.examples.hello.HelloRequest;

/** An ordinary grpc service: nothing here changes when the transport does. */
final class GreeterService extends GreeterGrpc.GreeterImplBase {
  @Override
  public void sayHello(HelloRequest request, StreamObserver<HelloReply> responses) {
    responses.onNext(HelloReply.newBuilder()
        .setMessage("Hello " + request.getName())
        .setServerPid(ProcessHandle.current().pid())
        .build());
    responses.onCompleted();
  }
}
