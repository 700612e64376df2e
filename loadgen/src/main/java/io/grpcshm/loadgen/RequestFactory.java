package io.grpcshm.loadgen;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import com.google.gson.JsonSyntaxException;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.Descriptors;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import io.grpc.Metadata;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds each call's request message and metadata. The data is one JSON object, or a JSON array
 * of objects sent round-robin by request number (as ghz). Text without template actions is
 * parsed once; templated text is rendered and parsed per call.
 */
final class RequestFactory {
  private final MethodDescriptor method;
  /** Non-null when the data text has template actions. */
  private final Template dataTemplate;
  private final List<DynamicMessage> constants = new ArrayList<>();
  private final Map<Metadata.Key<String>, Template> metadata = new LinkedHashMap<>();
  private final JsonFormat.Parser parser = JsonFormat.parser();

  RequestFactory(MethodDescriptor method, String dataJson, String metadataJson) {
    this.method = method;
    String text = dataJson == null || dataJson.isBlank() ? "{}" : dataJson;
    Template whole = Template.parse(text);
    if (!whole.isConstant()) {
      // Templates apply to the raw text (as ghz), so they may stand for unquoted numbers:
      // render and parse per call. Render once now to check the result is valid.
      dataTemplate = whole;
      items(parseJson(whole.render(context(0, 0)), "data (rendered)"))
          .forEach(item -> parse(item.toString()));
    } else {
      dataTemplate = null;
      for (JsonElement item : items(parseJson(text, "data"))) {
        constants.add(parse(item.toString()));
      }
    }
    parseMetadata(metadataJson);
  }

  /** Binary data (-b/-B): the messages, sent round-robin (unary) or as the stream. */
  RequestFactory(MethodDescriptor method, List<DynamicMessage> messages, String metadataJson) {
    this.method = method;
    this.dataTemplate = null;
    if (messages.isEmpty()) {
      throw new IllegalArgumentException("binary data holds no message");
    }
    constants.addAll(messages);
    parseMetadata(metadataJson);
  }

  private void parseMetadata(String metadataJson) {
    if (metadataJson == null || metadataJson.isBlank()) {
      return;
    }
    JsonElement md = parseJson(metadataJson, "metadata");
    if (!md.isJsonObject()) {
      throw new IllegalArgumentException("metadata must be a JSON object of string values");
    }
    for (Map.Entry<String, JsonElement> e : md.getAsJsonObject().entrySet()) {
      String key = e.getKey().toLowerCase(java.util.Locale.ROOT);
      if (key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
        throw new IllegalArgumentException("binary metadata (" + key + ") is not supported");
      }
      if (!e.getValue().isJsonPrimitive()) {
        throw new IllegalArgumentException("metadata value for " + key + " must be a string");
      }
      Template t = Template.parse(e.getValue().getAsString());
      t.render(context(0, 0));
      metadata.put(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER), t);
    }
  }

  /** Always the same message (compare's payloads). */
  RequestFactory(MethodDescriptor method, DynamicMessage fixed) {
    this.method = method;
    this.dataTemplate = null;
    constants.add(fixed);
  }

  /** The base message of {@code dataJson} (a single object, no templates). */
  static DynamicMessage.Builder base(MethodDescriptor method, String dataJson) {
    RequestFactory f = new RequestFactory(method, dataJson, null);
    if (f.size() != 1 || f.dataTemplate != null) {
      throw new IllegalArgumentException("compare takes one JSON object without templates");
    }
    return f.constants.get(0).toBuilder();
  }

  private static List<JsonElement> items(JsonElement data) {
    List<JsonElement> items = new ArrayList<>();
    if (data.isJsonArray()) {
      data.getAsJsonArray().forEach(items::add);
      if (items.isEmpty()) {
        throw new IllegalArgumentException("data is an empty JSON array: nothing to send");
      }
    } else {
      items.add(data);
    }
    for (JsonElement item : items) {
      if (!item.isJsonObject()) {
        throw new IllegalArgumentException("data must be a JSON object or an array of objects, "
            + "got " + item);
      }
    }
    return items;
  }

  private static JsonElement parseJson(String json, String what) {
    try {
      return JsonParser.parseString(json);
    } catch (JsonSyntaxException e) {
      throw new IllegalArgumentException(what + " is not valid JSON: " + e.getMessage(), e);
    }
  }

  Template.Context context(long requestNumber, int workerId) {
    return new Template.Context(requestNumber, workerId,
        method.getService().getFullName() + "/" + method.getName(),
        method.getService().getFullName(), method.getName(),
        method.getInputType().getFullName(), method.getOutputType().getFullName());
  }

  /** Number of distinct messages (array elements) sent round-robin. */
  int size() {
    return dataTemplate != null ? 0 : constants.size();
  }

  DynamicMessage request(long requestNumber, int workerId) {
    if (dataTemplate == null) {
      return constants.get((int) (requestNumber % constants.size()));
    }
    List<JsonElement> items = items(parseJson(
        dataTemplate.render(context(requestNumber, workerId)), "data (rendered)"));
    return parse(items.get((int) (requestNumber % items.size())).toString());
  }

  /**
   * All messages of the data for one call (a stream's messages); templates rendered for this
   * call (each call to this renders them anew, which --stream-dynamic-messages relies on).
   */
  List<DynamicMessage> items(long requestNumber, int workerId) {
    if (dataTemplate == null) {
      return constants;
    }
    List<DynamicMessage> out = new ArrayList<>();
    for (JsonElement item : items(parseJson(
        dataTemplate.render(context(requestNumber, workerId)), "data (rendered)"))) {
      out.add(parse(item.toString()));
    }
    return out;
  }

  /**
   * Binary data as ghz takes it: several messages, each prefixed by its length as a varint
   * (protobuf's writeDelimitedTo), or else one message.
   */
  static List<DynamicMessage> parseBinary(Descriptors.Descriptor type, byte[] bytes) {
    if (bytes.length == 0) {
      throw new IllegalArgumentException("binary data is empty");
    }
    List<DynamicMessage> out = new ArrayList<>();
    try {
      CodedInputStream in = CodedInputStream.newInstance(bytes);
      while (!in.isAtEnd()) {
        int length = in.readRawVarint32();
        if (length < 0 || length > bytes.length - in.getTotalBytesRead()) {
          out.clear();
          break;
        }
        out.add(DynamicMessage.parseFrom(type, in.readRawBytes(length)));
      }
    } catch (IOException e) {
      out.clear();
    }
    if (!out.isEmpty()) {
      return out;
    }
    try {
      return List.of(DynamicMessage.parseFrom(type, bytes));
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException("binary data is not a serialized " + type.getFullName()
          + " (nor length-delimited ones): " + e.getMessage(), e);
    }
  }

  Metadata metadata(long requestNumber, int workerId) {
    Metadata md = new Metadata();
    if (!metadata.isEmpty()) {
      Template.Context ctx = context(requestNumber, workerId);
      metadata.forEach((k, t) -> md.put(k, t.render(ctx)));
    }
    return md;
  }

  private DynamicMessage parse(String json) {
    DynamicMessage.Builder b = DynamicMessage.newBuilder(method.getInputType());
    try {
      parser.merge(json, b);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalArgumentException("data does not match " + method.getInputType()
          .getFullName() + ": " + e.getMessage(), e);
    }
    return b.build();
  }
}
