package dev.stasis.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Rendered Kubernetes manifests (helm template, kubectl kustomize), by kind, namespace and name. */
public final class Manifests {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private Manifests() {}

  /** Every object of a multi-document YAML stream, keyed {@code Kind namespace/name}. */
  public static Map<String, ObjectNode> parse(String yaml) {
    Map<String, ObjectNode> objects = new TreeMap<>();
    try (var parser = YAML.createParser(yaml)) {
      for (var docs = YAML.readValues(parser, JsonNode.class); docs.hasNext(); ) {
        JsonNode doc = docs.next();
        if (doc == null || !doc.isObject()) {
          continue; // an empty document between two separators
        }
        JsonNode meta = doc.path("metadata");
        String key = doc.path("kind").asText() + " " + meta.path("namespace").asText("") + "/" + meta.path("name").asText();
        if (objects.put(key, (ObjectNode) doc) != null) {
          throw new AssertionError("rendered twice: " + key);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return objects;
  }

  /**
   * The object as a comparison should see it: without its own labels and annotations (they say who
   * manages it, not what it is), and with whole numbers written alike (kustomize turns 1.0 into 1).
   */
  public static ObjectNode comparable(ObjectNode object) {
    ObjectNode copy = object.deepCopy();
    ((ObjectNode) copy.path("metadata")).remove(List.of("labels", "annotations"));
    return (ObjectNode) wholeNumbersAsLongs(copy);
  }

  private static JsonNode wholeNumbersAsLongs(JsonNode node) {
    if (node.isFloatingPointNumber() && node.doubleValue() == Math.rint(node.doubleValue())) {
      return LongNode.valueOf(node.longValue());
    }
    if (node.isIntegralNumber()) {
      return LongNode.valueOf(node.longValue());
    }
    if (node.isObject()) {
      node.fields().forEachRemaining(e -> e.setValue(wholeNumbersAsLongs(e.getValue())));
    } else if (node.isArray()) {
      ArrayNode array = (ArrayNode) node;
      for (int i = 0; i < array.size(); i++) {
        array.set(i, wholeNumbersAsLongs(array.get(i)));
      }
    }
    return node;
  }
}
