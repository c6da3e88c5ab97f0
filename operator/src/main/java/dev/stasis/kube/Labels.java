package dev.stasis.kube;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.util.HashMap;
import java.util.Map;

/** Labels Stasis puts on resources. The operator decides; labels (not spec) carry the decision. */
public final class Labels {
  /** The node whose agent does the work for a Checkpoint or Restore. */
  public static final String NODE = "stasis.dev/node";
  /** The CheckpointSchedule that created a Checkpoint. */
  public static final String SCHEDULE = "stasis.dev/schedule";
  /** Why a schedule created a Checkpoint: {@value #TRIGGER_SCHEDULE} or {@value #TRIGGER_DRAIN}. */
  public static final String TRIGGER = "stasis.dev/trigger";
  public static final String TRIGGER_SCHEDULE = "schedule";
  public static final String TRIGGER_DRAIN = "drain";
  /** The pod a schedule with a selector took a Checkpoint of; see {@link #podValue}. */
  public static final String POD = "stasis.dev/pod";
  /**
   * On a failover's Restore: the lost node whose agent, when it comes back, ends the copy of the
   * process tree that ran there (fencing).
   */
  public static final String FAILOVER_FROM = "stasis.dev/failover-from";
  /** The Migration that created a Checkpoint or Restore; see {@link #migrationValue}. */
  public static final String MIGRATION = "stasis.dev/migration";

  private Labels() {}

  public static String nodeSelector(String node) {
    return NODE + "=" + node;
  }

  /** The {@value #POD} label's value for a pod: its name, shortened past the 63 characters a label value may have. */
  public static String podValue(String pod) {
    return Names.shortened(pod, Names.MAX_LABEL_VALUE);
  }

  /** The {@value #MIGRATION} label's value: the Migration's name, shortened past 63 characters. */
  public static String migrationValue(String migration) {
    return Names.shortened(migration, Names.MAX_LABEL_VALUE);
  }

  public static String node(HasMetadata resource) {
    Map<String, String> labels = resource.getMetadata().getLabels();
    return labels == null ? null : labels.get(NODE);
  }

  /**
   * Labels the resource for the agent of {@code node}; returns the updated resource. One merge
   * patch of the label alone, conditional on the resourceVersion of {@code resource}: a decision
   * made on that copy is not applied over a change made since (the API server answers 409).
   */
  public static <R extends HasMetadata> R assign(KubernetesClient client, R resource, String node) {
    if (node.equals(node(resource))) {
      return resource;
    }
    var metadata = new HashMap<String, Object>();
    metadata.put("labels", Map.of(NODE, node));
    if (resource.getMetadata().getResourceVersion() != null) {
      metadata.put("resourceVersion", resource.getMetadata().getResourceVersion());
    }
    return client.resource(resource).patch(PatchContext.of(PatchType.JSON_MERGE),
        client.getKubernetesSerialization().asJson(Map.of("metadata", metadata)));
  }
}
