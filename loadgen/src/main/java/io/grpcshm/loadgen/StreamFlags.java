package io.grpcshm.loadgen;

import com.google.protobuf.Descriptors;
import java.time.Duration;
import picocli.CommandLine;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** ghz's stream flags (--stream-*), checked against each other and the method's kind. */
final class StreamFlags {
  @Option(names = "--stream-interval", paramLabel = "DURATION", converter = GoDuration.class,
      description = "Client/bidi streams: pause between sends.")
  Duration streamInterval;

  @Option(names = "--stream-call-duration", paramLabel = "DURATION",
      converter = GoDuration.class, description = "Streams: stop sending (client/bidi) or "
          + "cancel receiving (server) after this long.")
  Duration streamCallDuration;

  @Option(names = "--stream-call-count", paramLabel = "N",
      description = "Streams: messages to send (client/bidi; the data array is cycled or cut) "
          + "or to receive before cancelling (server).")
  Long streamCallCount;

  @Option(names = "--stream-dynamic-messages",
      description = "Streams: render the data's templates anew for every message sent.")
  boolean streamDynamicMessages;

  CallExecutor.StreamOptions options(CommandLine cl) {
    for (Duration d : new Duration[] {streamInterval, streamCallDuration}) {
      if (d != null && (d.isNegative() || d.isZero())) {
        throw new ParameterException(cl, "--stream-interval and --stream-call-duration must be "
            + "positive (leave them out for none)");
      }
    }
    if (streamCallCount != null && streamCallCount < 1) {
      throw new ParameterException(cl, "--stream-call-count must be at least 1");
    }
    return new CallExecutor.StreamOptions(
        streamInterval == null ? Duration.ZERO : streamInterval,
        streamCallDuration == null ? Duration.ZERO : streamCallDuration,
        streamCallCount == null ? 0 : streamCallCount, streamDynamicMessages);
  }

  /** Stream flags that make no sense for the method's kind. */
  void checkMethodKind(Descriptors.MethodDescriptor md, boolean binary, CommandLine cl) {
    boolean clientStreams = md.isClientStreaming();
    boolean streams = clientStreams || md.isServerStreaming();
    if (!streams && (streamInterval != null || streamCallDuration != null
        || streamCallCount != null || streamDynamicMessages)) {
      throw new ParameterException(cl, md.getFullName() + " is unary: the --stream-* flags "
          + "apply to streaming methods only");
    }
    if (streams && !clientStreams && (streamInterval != null || streamDynamicMessages)) {
      throw new ParameterException(cl, md.getFullName() + " is server streaming: it sends one "
          + "request, so --stream-interval and --stream-dynamic-messages do not apply");
    }
    if (streamDynamicMessages && binary) {
      throw new ParameterException(cl, "--stream-dynamic-messages renders templates; binary "
          + "data has none");
    }
  }
}
