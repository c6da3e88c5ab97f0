package dev.stasis.kube;

import dev.stasis.api.StatusLimits;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Records Kubernetes Events on Stasis resources, so that {@code kubectl describe} tells the story.
 * A message is cut at {@value StatusLimits#MAX_MESSAGE_CHARS} characters (the resource's status says
 * the rest). An Event that cannot be written is logged, never fatal.
 */
public class EventRecorder {
  private static final Logger log = LoggerFactory.getLogger(EventRecorder.class);
  /** Events of cluster-scoped resources (storages, node profiles) go here, as Kubernetes does. */
  private static final String CLUSTER_EVENTS_NAMESPACE = "default";

  private final KubernetesClient client;
  private final String component;
  private final String instance;

  public EventRecorder(KubernetesClient client, String component, String instance) {
    this.client = client;
    this.component = component;
    this.instance = instance;
  }

  public void normal(HasMetadata resource, String reason, String message) {
    record(resource, "Normal", reason, message);
  }

  public void warning(HasMetadata resource, String reason, String message) {
    record(resource, "Warning", reason, message);
  }

  private void record(HasMetadata resource, String type, String reason, String message) {
    var meta = resource.getMetadata();
    String namespace = meta.getNamespace() != null ? meta.getNamespace() : CLUSTER_EVENTS_NAMESPACE;
    String now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    var event = new EventBuilder()
        .withNewMetadata()
        .withGenerateName(meta.getName() + ".")
        .withNamespace(namespace)
        .endMetadata()
        .withInvolvedObject(new ObjectReferenceBuilder()
            .withApiVersion(resource.getApiVersion())
            .withKind(resource.getKind())
            .withName(meta.getName())
            .withNamespace(meta.getNamespace())
            .withUid(meta.getUid())
            .build())
        .withType(type)
        .withReason(reason)
        .withMessage(StatusLimits.shorten(message, StatusLimits.MAX_MESSAGE_CHARS))
        .withFirstTimestamp(now)
        .withLastTimestamp(now)
        .withCount(1)
        .withNewSource(component, instance)
        .withReportingComponent("stasis.dev/" + component)
        .withReportingInstance(instance)
        .build();
    // Every Event is a log line too, carrying the resource's fields: a log search tells the same story.
    try (var fields = LogFields.of(resource)) {
      if (type.equals("Warning")) {
        log.warn("{} {}: {}", resource.getKind(), reason, message);
      } else {
        log.info("{} {}: {}", resource.getKind(), reason, message);
      }
      try {
        client.v1().events().inNamespace(namespace).resource(event).create();
      } catch (KubernetesClientException e) {
        log.warn("could not record event {} on {}/{}: {}", reason, namespace, meta.getName(), e.getMessage());
      }
    }
  }
}
