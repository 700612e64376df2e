package io.grpcshm.codec;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.MessageLite;
import java.util.HashSet;
import java.util.Set;

/** Whether parsing a message type with aliasing can leave views of the input in the message. */
final class Schema {
  private Schema() {}

  /**
   * True if the type (or a message it contains) has a {@code bytes} field or a {@code string}
   * field that protobuf keeps as bytes until first read (proto2 without UTF-8 checking). Types
   * with neither gain nothing from aliasing, so they are parsed in place and released at once.
   * Unknown fields and extensions are ignored: aliasing them is harmless but not a reason to
   * hold transport memory. Lite messages have no descriptors; assume they can alias.
   */
  static boolean canAlias(MessageLite prototype) {
    if (!(prototype instanceof Message full)) {
      return true;
    }
    return canAlias(full.getDescriptorForType(), new HashSet<>());
  }

  private static boolean canAlias(Descriptor type, Set<Descriptor> seen) {
    if (!seen.add(type)) {
      return false;
    }
    for (FieldDescriptor field : type.getFields()) {
      switch (field.getJavaType()) {
        case BYTE_STRING -> {
          return true;
        }
        case STRING -> {
          if (!field.needsUtf8Check()) {
            return true;
          }
        }
        case MESSAGE -> {
          if (canAlias(field.getMessageType(), seen)) {
            return true;
          }
        }
        default -> { }
      }
    }
    return false;
  }
}
