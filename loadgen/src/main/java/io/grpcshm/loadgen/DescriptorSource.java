package io.grpcshm.loadgen;

import com.google.protobuf.ByteString;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.DescriptorProtos.FileDescriptorSet;
import com.google.protobuf.Descriptors.DescriptorValidationException;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Finds the protobuf descriptor of the method to call: from a FileDescriptorSet file
 * ({@code --protoset}, as ghz; build it with {@code protoc --include_imports --descriptor_set_out}),
 * from .proto sources through a {@code protoc} executable ({@code --proto}), or, when neither is
 * given, from the server's reflection service ({@code grpc.reflection.v1}, or
 * {@code grpc.reflection.v1alpha} from servers without v1).
 */
final class DescriptorSource {
  private DescriptorSource() {}

  /** Server reflection v1. */
  private static final io.grpc.MethodDescriptor<ServerReflectionRequest, ServerReflectionResponse>
      REFLECTION_V1 = ServerReflectionGrpc.getServerReflectionInfoMethod();
  /** v1alpha: the same messages, field for field, under the older service name. */
  private static final io.grpc.MethodDescriptor<ServerReflectionRequest, ServerReflectionResponse>
      REFLECTION_V1ALPHA = REFLECTION_V1.toBuilder()
          .setFullMethodName("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
          .build();

  /** The server has no such reflection service (UNIMPLEMENTED). */
  private static final class NoReflection extends RuntimeException {
    NoReflection(Throwable cause) {
      super(cause);
    }
  }

  /** Well-known types bundled with protobuf-java: a protoset or a server may leave them out. */
  private static final Map<String, FileDescriptor> WELL_KNOWN = new HashMap<>();

  static {
    for (FileDescriptor fd : List.of(
        com.google.protobuf.AnyProto.getDescriptor(),
        com.google.protobuf.ApiProto.getDescriptor(),
        com.google.protobuf.DescriptorProtos.getDescriptor(),
        com.google.protobuf.DurationProto.getDescriptor(),
        com.google.protobuf.EmptyProto.getDescriptor(),
        com.google.protobuf.FieldMaskProto.getDescriptor(),
        com.google.protobuf.SourceContextProto.getDescriptor(),
        com.google.protobuf.StructProto.getDescriptor(),
        com.google.protobuf.TimestampProto.getDescriptor(),
        com.google.protobuf.TypeProto.getDescriptor(),
        com.google.protobuf.WrappersProto.getDescriptor())) {
      WELL_KNOWN.put(fd.getName(), fd);
    }
  }

  /** Splits "pkg.Service/Method" (also "pkg.Service.Method", as ghz accepts). */
  static String[] splitCall(String call) {
    String c = call.startsWith("/") ? call.substring(1) : call;
    int slash = c.lastIndexOf('/');
    int cut = slash >= 0 ? slash : c.lastIndexOf('.');
    if (cut <= 0 || cut == c.length() - 1) {
      throw new IllegalArgumentException(
          "--call must look like package.Service/Method, got '" + call + "'");
    }
    return new String[] {c.substring(0, cut), c.substring(cut + 1)};
  }

  static MethodDescriptor fromProtoset(Path protoset, String call) throws IOException {
    FileDescriptorSet set;
    try {
      set = FileDescriptorSet.parseFrom(Files.readAllBytes(protoset));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException(protoset + " is not a FileDescriptorSet (build it with "
          + "protoc --include_imports --descriptor_set_out=FILE): " + e.getMessage(), e);
    }
    Map<String, FileDescriptorProto> protos = new LinkedHashMap<>();
    for (FileDescriptorProto p : set.getFileList()) {
      protos.put(p.getName(), p);
    }
    return findMethod(buildAll(protos), call, "protoset " + protoset);
  }

  /**
   * Compiles .proto files with a protoc found on the PATH (or {@code protocPath}) into a protoset.
   * protobuf-java cannot parse .proto text by itself.
   */
  static MethodDescriptor fromProtoFiles(String protoc, List<Path> protoFiles, List<Path> importPaths,
      String call) throws IOException, InterruptedException {
    Path out = Files.createTempFile("grpc-load", ".protoset");
    try {
      List<String> cmd = new ArrayList<>();
      cmd.add(protoc);
      cmd.add("--include_imports");
      cmd.add("--descriptor_set_out=" + out);
      for (Path ip : importPaths) {
        cmd.add("-I" + ip);
      }
      if (importPaths.isEmpty()) {
        for (Path f : protoFiles) {
          Path parent = f.toAbsolutePath().getParent();
          cmd.add("-I" + parent);
        }
      }
      for (Path f : protoFiles) {
        cmd.add(importPaths.isEmpty() ? f.getFileName().toString() : f.toString());
      }
      Process p;
      try {
        p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      } catch (IOException e) {
        throw new IllegalArgumentException("--proto needs a protoc executable ('" + protoc
            + "' could not be started: " + e.getMessage() + "). Install protoc or pass --protoc, "
            + "or give --protoset FILE (protoc --include_imports --descriptor_set_out=FILE ...), "
            + "or leave both out to use server reflection.", e);
      }
      String output = new String(p.getInputStream().readAllBytes());
      if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalArgumentException("protoc failed: " + output.strip());
      }
      return fromProtoset(out, call);
    } finally {
      Files.deleteIfExists(out);
    }
  }

  /**
   * Asks the server's reflection service for the file defining the service, and its imports:
   * reflection v1 first, v1alpha if the server has no v1.
   */
  static MethodDescriptor fromReflection(Channel channel, String call, long timeoutMillis) {
    try {
      return fromReflection(channel, REFLECTION_V1, call, timeoutMillis);
    } catch (NoReflection v1Missing) {
      try {
        return fromReflection(channel, REFLECTION_V1ALPHA, call, timeoutMillis);
      } catch (NoReflection neither) {
        throw new IllegalStateException("server reflection failed: UNIMPLEMENTED (the server has"
            + " neither grpc.reflection.v1 nor grpc.reflection.v1alpha: pass --protoset or"
            + " --proto)", neither.getCause());
      }
    }
  }

  private static MethodDescriptor fromReflection(Channel channel,
      io.grpc.MethodDescriptor<ServerReflectionRequest, ServerReflectionResponse> method,
      String call, long timeoutMillis) {
    String service = splitCall(call)[0];
    LinkedBlockingQueue<Object> answers = new LinkedBlockingQueue<>();
    StreamObserver<ServerReflectionRequest> requests = ClientCalls.asyncBidiStreamingCall(
        channel.newCall(method, CallOptions.DEFAULT), new StreamObserver<>() {
          @Override public void onNext(ServerReflectionResponse r) {
            answers.add(r);
          }

          @Override public void onError(Throwable t) {
            answers.add(t);
          }

          @Override public void onCompleted() {
            answers.add(Status.UNAVAILABLE.withDescription("reflection stream ended"));
          }
        });
    try {
      Map<String, FileDescriptorProto> protos = new LinkedHashMap<>();
      List<ByteString> pending = new ArrayList<>(ask(requests, answers,
          ServerReflectionRequest.newBuilder().setFileContainingSymbol(service).build(),
          timeoutMillis, "service " + service));
      while (!pending.isEmpty()) {
        FileDescriptorProto p = FileDescriptorProto.parseFrom(pending.removeLast());
        if (protos.putIfAbsent(p.getName(), p) != null) {
          continue;
        }
        for (String dep : p.getDependencyList()) {
          if (!protos.containsKey(dep) && !WELL_KNOWN.containsKey(dep)) {
            pending.addAll(ask(requests, answers,
                ServerReflectionRequest.newBuilder().setFileByFilename(dep).build(),
                timeoutMillis, "file " + dep));
          }
        }
      }
      return findMethod(buildAll(protos), call, "server reflection");
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("bad descriptor from server reflection", e);
    } finally {
      try {
        requests.onCompleted();
      } catch (RuntimeException ignored) {
        // the stream may already be dead
      }
    }
  }

  private static List<ByteString> ask(StreamObserver<ServerReflectionRequest> requests,
      LinkedBlockingQueue<Object> answers, ServerReflectionRequest request, long timeoutMillis,
      String what) {
    requests.onNext(request);
    Object answer;
    try {
      answer = answers.poll(timeoutMillis, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
    if (answer == null) {
      throw new IllegalStateException("server reflection: no answer for " + what + " within "
          + timeoutMillis + " ms");
    }
    if (answer instanceof Throwable t) {
      Status s = Status.fromThrowable(t);
      if (s.getCode() == Status.Code.UNIMPLEMENTED) {
        throw new NoReflection(t);
      }
      throw new IllegalStateException("server reflection failed: " + s.getCode()
          + (s.getDescription() == null ? "" : ": " + s.getDescription()), t);
    }
    if (answer instanceof Status s) {
      throw new StatusRuntimeException(s);
    }
    ServerReflectionResponse r = (ServerReflectionResponse) answer;
    if (r.hasErrorResponse()) {
      throw new IllegalArgumentException("server reflection: " + what + " not found: "
          + r.getErrorResponse().getErrorMessage());
    }
    return r.getFileDescriptorResponse().getFileDescriptorProtoList();
  }

  private static Map<String, FileDescriptor> buildAll(Map<String, FileDescriptorProto> protos) {
    Map<String, FileDescriptor> built = new HashMap<>();
    for (String name : protos.keySet()) {
      build(name, protos, built, new ArrayList<>());
    }
    return built;
  }

  private static FileDescriptor build(String name, Map<String, FileDescriptorProto> protos,
      Map<String, FileDescriptor> built, List<String> path) {
    FileDescriptor done = built.get(name);
    if (done != null) {
      return done;
    }
    FileDescriptorProto proto = protos.get(name);
    if (proto == null) {
      FileDescriptor wk = WELL_KNOWN.get(name);
      if (wk != null) {
        return wk;
      }
      throw new IllegalArgumentException("missing imported file " + name
          + " (build protosets with --include_imports)");
    }
    if (path.contains(name)) {
      throw new IllegalArgumentException("import cycle: " + path + " -> " + name);
    }
    path.add(name);
    List<FileDescriptor> deps = new ArrayList<>();
    for (String dep : proto.getDependencyList()) {
      deps.add(build(dep, protos, built, path));
    }
    path.removeLast();
    try {
      FileDescriptor fd = FileDescriptor.buildFrom(proto, deps.toArray(new FileDescriptor[0]));
      built.put(name, fd);
      return fd;
    } catch (DescriptorValidationException e) {
      throw new IllegalArgumentException("invalid descriptor " + name + ": " + e.getMessage(), e);
    }
  }

  private static MethodDescriptor findMethod(Map<String, FileDescriptor> files, String call,
      String source) {
    String[] parts = splitCall(call);
    List<String> known = new ArrayList<>();
    for (FileDescriptor fd : files.values()) {
      for (ServiceDescriptor sd : fd.getServices()) {
        known.add(sd.getFullName());
        if (sd.getFullName().equals(parts[0])) {
          MethodDescriptor md = sd.findMethodByName(parts[1]);
          if (md == null) {
            throw new IllegalArgumentException("service " + parts[0] + " has no method "
                + parts[1] + " (" + source + "); methods: "
                + sd.getMethods().stream().map(MethodDescriptor::getName).toList());
          }
          return md;
        }
      }
    }
    throw new IllegalArgumentException("service " + parts[0] + " not found in " + source
        + "; services: " + known);
  }
}
