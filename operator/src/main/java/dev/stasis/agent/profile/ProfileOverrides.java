package dev.stasis.agent.profile;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.api.NodeProfileSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A test aid (agent flag {@code --profile-overrides FILE}): a JSON merge patch (RFC 7386) over the
 * NodeProfile the probe observed, so that agents on one machine can pose as nodes that differ, for
 * instance one whose CPU lacks flags the other has, or one with an older CRIU. Only what the profile
 * claims changes; the agent still runs the machine's real CPU and CRIU, and the published profile
 * carries the annotation {@value #ANNOTATION} naming the overridden fields, so it never passes for
 * an observation.
 */
final class ProfileOverrides {
  static final String ANNOTATION = "stasis.dev/profile-overrides";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path file;
  private final JsonNode patch;

  private ProfileOverrides(Path file, JsonNode patch) {
    this.file = file;
    this.patch = patch;
  }

  /** None when {@code file} is null; a file that cannot be read or is not a JSON object stops the agent. */
  static ProfileOverrides load(Path file) {
    if (file == null) {
      return new ProfileOverrides(null, null);
    }
    try {
      JsonNode patch = JSON.readTree(file.toFile());
      if (patch == null || !patch.isObject()) {
        throw new IllegalArgumentException("--profile-overrides " + file + " must hold a JSON object (a merge patch of NodeProfile.spec)");
      }
      return new ProfileOverrides(file, patch);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read --profile-overrides " + file + ": " + e.getMessage(), e);
    }
  }

  boolean isEmpty() {
    return patch == null;
  }

  NodeProfileSpec applyTo(NodeProfileSpec observed) {
    if (patch == null) {
      return observed;
    }
    return JSON.convertValue(merge(JSON.valueToTree(observed), patch), NodeProfileSpec.class);
  }

  /** For the annotation: which fields are not observed, and where they came from. */
  String describe() {
    List<String> fields = new ArrayList<>();
    leaves(patch, "", fields);
    return String.join(", ", fields) + " set by " + file + " (test aid, not observed)";
  }

  private static JsonNode merge(JsonNode target, JsonNode patch) {
    if (!patch.isObject()) {
      return patch;
    }
    ObjectNode result = target.isObject() ? ((ObjectNode) target).deepCopy() : JSON.createObjectNode();
    patch.fields().forEachRemaining(field -> {
      if (field.getValue().isNull()) {
        result.remove(field.getKey());
      } else {
        result.set(field.getKey(), merge(result.path(field.getKey()), field.getValue()));
      }
    });
    return result;
  }

  private static void leaves(JsonNode node, String prefix, List<String> into) {
    if (!node.isObject()) {
      into.add(prefix);
      return;
    }
    node.fields().forEachRemaining(f -> leaves(f.getValue(), prefix.isEmpty() ? f.getKey() : prefix + "." + f.getKey(), into));
  }
}
