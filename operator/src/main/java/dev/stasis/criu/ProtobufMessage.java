package dev.stasis.criu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One protobuf message of a CRIU image, decoded into its fields by number without a schema:
 * varints as numbers, length-delimited fields as bytes (a string, a nested message or packed
 * numbers, as the caller knows from CRIU's .proto files). Fields it never asks for cost nothing more.
 */
final class ProtobufMessage {
  private final Map<Integer, List<Object>> fields = new HashMap<>();

  ProtobufMessage(ByteBuffer bytes) {
    ProtobufReader reader = new ProtobufReader(bytes.slice().order(ByteOrder.LITTLE_ENDIAN));
    while (reader.hasMore()) {
      int tag = reader.readTag();
      Object value = switch (ProtobufReader.wireType(tag)) {
        case 0 -> reader.readVarint();
        case 2 -> ByteBuffer.wrap(reader.readBytes());
        default -> {
          reader.skip(tag);
          yield null;
        }
      };
      if (value != null) {
        fields.computeIfAbsent(ProtobufReader.fieldNumber(tag), f -> new ArrayList<>()).add(value);
      }
    }
  }

  Optional<Long> number(int field) {
    return values(field).stream().filter(Long.class::isInstance).map(Long.class::cast).reduce((a, b) -> b);
  }

  long number(int field, long otherwise) {
    return number(field).orElse(otherwise);
  }

  /** A repeated number, written packed or one by one. */
  List<Long> numbers(int field) {
    List<Long> numbers = new ArrayList<>();
    for (Object value : values(field)) {
      if (value instanceof Long n) {
        numbers.add(n);
      } else {
        ProtobufReader packed = new ProtobufReader(((ByteBuffer) value).duplicate());
        while (packed.hasMore()) {
          numbers.add(packed.readVarint());
        }
      }
    }
    return numbers;
  }

  Optional<byte[]> bytes(int field) {
    return values(field).stream().filter(ByteBuffer.class::isInstance).map(b -> {
      ByteBuffer copy = ((ByteBuffer) b).duplicate();
      byte[] out = new byte[copy.remaining()];
      copy.get(out);
      return out;
    }).reduce((a, b) -> b);
  }

  Optional<String> string(int field) {
    return bytes(field).map(b -> new String(b, StandardCharsets.UTF_8));
  }

  Optional<ProtobufMessage> message(int field) {
    List<ProtobufMessage> all = messages(field);
    return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
  }

  List<ProtobufMessage> messages(int field) {
    return values(field).stream().filter(ByteBuffer.class::isInstance)
        .map(b -> new ProtobufMessage(((ByteBuffer) b).duplicate())).toList();
  }

  private List<Object> values(int field) {
    return fields.getOrDefault(field, List.of());
  }
}
