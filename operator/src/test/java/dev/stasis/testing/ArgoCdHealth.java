package dev.stasis.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * What Argo CD makes of an object with Stasis' health check (docs/argocd/health.lua): the script
 * run by Debian's lua5.1 (Argo CD's gopher-lua speaks Lua 5.1) in the sandbox Argo CD gives it
 * (src/test/resources/argocd/sandbox.lua), on the object as the API server returned it, handed to
 * Lua the way Argo CD decodes objects (JSON objects and arrays as tables, numbers as numbers).
 */
public final class ArgoCdHealth {
  public static final Path SCRIPT = TestControlPlane.repoRoot().resolve("docs/argocd/health.lua");
  private static final Path SANDBOX = TestControlPlane.repoRoot().resolve("operator/src/test/resources/argocd/sandbox.lua");
  private static final ObjectMapper JSON = new ObjectMapper();

  private ArgoCdHealth() {}

  /** The health of {@code objectJson} by {@code script}. */
  public static Health of(Path script, String objectJson) throws IOException, InterruptedException {
    Path object = Files.createTempFile("argocd-object-", ".lua");
    try {
      Files.writeString(object, "return " + lua(JSON.readTree(objectJson)) + "\n", StandardCharsets.ISO_8859_1);
      Process lua = new ProcessBuilder("lua5.1", SANDBOX.toString(), script.toString(), object.toString())
          .redirectErrorStream(true).start();
      String output = new String(lua.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!lua.waitFor(30, TimeUnit.SECONDS) || lua.exitValue() != 0) {
        lua.destroyForcibly();
        throw new AssertionError("the health script failed:\n" + output);
      }
      String[] lines = output.split("\n", 2);
      return new Health(lines[0], lines.length > 1 ? lines[1].stripTrailing() : "");
    } finally {
      Files.deleteIfExists(object);
    }
  }

  public static Health of(String objectJson) throws IOException, InterruptedException {
    return of(SCRIPT, objectJson);
  }

  /** A Lua table constructor of {@code node}; JSON null leaves the key out, as it is nil in Lua. */
  private static String lua(JsonNode node) {
    if (node.isObject()) {
      StringBuilder table = new StringBuilder("{");
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> field = it.next();
        if (!field.getValue().isNull()) {
          table.append('[').append(string(field.getKey())).append("]=").append(lua(field.getValue())).append(',');
        }
      }
      return table.append('}').toString();
    }
    if (node.isArray()) {
      StringBuilder table = new StringBuilder("{");
      node.forEach(item -> table.append(lua(item)).append(','));
      return table.append('}').toString();
    }
    if (node.isNumber() || node.isBoolean()) {
      return node.asText();
    }
    return node.isNull() ? "nil" : string(node.asText());
  }

  /** A Lua string literal of the UTF-8 bytes of {@code text}: printable ASCII as is, other bytes as \ddd. */
  private static String string(String text) {
    StringBuilder literal = new StringBuilder("\"");
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if (c >= 32 && c < 127 && c != '"' && c != '\\') {
        literal.append((char) c);
      } else {
        literal.append('\\').append(String.format("%03d", c));
      }
    }
    return literal.append('"').toString();
  }

  /** Healthy, Progressing, Degraded or Suspended, and the message Argo CD shows. */
  public record Health(String status, String message) {}
}
