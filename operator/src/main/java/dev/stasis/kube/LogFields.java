package dev.stasis.kube;

import dev.stasis.api.AgentWorkStatus;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.CustomResource;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.MDC;

/**
 * The fields a log line about a resource carries, so that a cluster's log search finds every line
 * of one Checkpoint or Restore: {@code resource.namespace}, {@code resource.name},
 * {@code resource.uid} and {@code resource.kind} (the keys JOSDK sets while it reconciles), and for
 * an agent's work its {@code node} and {@code attempt}. Set for a block and put back as they were
 * after it: {@code try (var fields = LogFields.of(checkpoint)) { ... }}.
 */
public final class LogFields implements AutoCloseable {
  public static final String NAMESPACE = "resource.namespace";
  public static final String NAME = "resource.name";
  public static final String UID = "resource.uid";
  public static final String KIND = "resource.kind";
  public static final String NODE = "node";
  public static final String ATTEMPT = "attempt";

  private final Map<String, String> previous = new LinkedHashMap<>();

  private LogFields(Map<String, String> fields) {
    fields.forEach((key, value) -> {
      previous.put(key, MDC.get(key));
      if (value == null) {
        MDC.remove(key);
      } else {
        MDC.put(key, value);
      }
    });
  }

  /** The resource's own fields, and its node and attempt when an agent works on it. */
  public static LogFields of(HasMetadata resource) {
    var meta = resource.getMetadata();
    Map<String, String> fields = new LinkedHashMap<>();
    fields.put(NAMESPACE, meta.getNamespace());
    fields.put(NAME, meta.getName());
    fields.put(UID, meta.getUid());
    fields.put(KIND, resource.getKind());
    if (resource instanceof CustomResource<?, ?> custom && custom.getStatus() instanceof AgentWorkStatus work) {
      fields.put(NODE, work.node);
      fields.put(ATTEMPT, work.attempts == null ? null : work.attempts.toString());
    }
    return new LogFields(fields);
  }

  @Override
  public void close() {
    previous.forEach((key, value) -> {
      if (value == null) {
        MDC.remove(key);
      } else {
        MDC.put(key, value);
      }
    });
  }
}
