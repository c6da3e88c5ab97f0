package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.Migration;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestorePodSpec;
import dev.stasis.api.RestoreSpec;
import dev.stasis.kube.Labels;
import dev.stasis.kube.Names;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.net.HttpURLConnection;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The Checkpoint and Restores of one Migration: named after it (its Checkpoint and its Restore
 * carry its name, the Restore on the source node {@code <name>-source}), labelled {@value
 * Labels#MIGRATION} and owned by it (deleting the Migration deletes them, and with the Checkpoint
 * its archive; unless the workload could not be brought back anywhere: then its Checkpoint is let
 * go, to be restored by hand). Creating one twice is impossible: a pass whose status write was lost finds its child
 * already there; one of that name that is not the Migration's is refused.
 */
final class MigrationChildren {
  private final KubernetesClient client;

  MigrationChildren(KubernetesClient client) {
    this.client = client;
  }

  /**
   * The checkpoint that moves the target: a process tree is stopped for it and ended once its archive
   * is stored; a pod runs on through it (the kubelet's checkpoint) and is deleted once it is stored
   * ({@link #sourcePodGone}).
   */
  String createCheckpoint(Migration migration) throws Refusal {
    CheckpointSpec spec = new CheckpointSpec(client.getKubernetesSerialization().clone(migration.getSpec().target));
    spec.storage = migration.getSpec().storage;
    if (spec.target.process != null) {
      spec.options = new CheckpointOptions();
      spec.options.leaveRunning = false;
    }
    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(metadata(migration, migration.getMetadata().getName()));
    checkpoint.setSpec(spec);
    return create(migration, checkpoint);
  }

  /**
   * A Restore of the Migration's checkpoint: {@code name}, placed by {@code placement} (the
   * Migration's, without its source node; or on the source node only). A pod comes back under its
   * own name (it is gone by then), so that what names it finds it; except a drain's: {@code kubectl
   * drain} evicts by name until it gets a 404, and would evict the restored pod while it starts.
   */
  String createRestore(Migration migration, String name, RestorePlacement placement) throws Refusal {
    return create(migration, restore(migration, name, placement));
  }

  /** The Restore {@link #createRestore} creates, not created: what a pre-flight judges. */
  Restore restore(Migration migration, String name, RestorePlacement placement) {
    RestoreSpec spec = new RestoreSpec();
    spec.checkpointRef = new CheckpointRef(migration.getStatus().checkpoint);
    spec.placement = placement;
    var labels = migration.getMetadata().getLabels();
    boolean drain = labels != null && Labels.TRIGGER_DRAIN.equals(labels.get(Labels.TRIGGER));
    if (migration.getSpec().target.pod != null && !drain) {
      spec.pod = new RestorePodSpec();
      spec.pod.name = migration.getSpec().target.pod.name;
    }
    Restore restore = new Restore();
    restore.setMetadata(metadata(migration, name));
    restore.setSpec(spec);
    return restore;
  }

  /** The Migration's placement for the restore elsewhere: its source node excluded unless spec.allowSourceNode. */
  RestorePlacement placementElsewhere(Migration migration, String sourceNode) {
    RestorePlacement placement = client.getKubernetesSerialization().clone(migration.getSpec().placementOrDefaults());
    if (!migration.getSpec().allowsSourceNode()) {
      placement.excludeNodes = new ArrayList<>(placement.excludeNodes == null ? List.of() : placement.excludeNodes);
      if (!placement.excludeNodes.contains(sourceNode)) {
        placement.excludeNodes.add(sourceNode);
      }
    }
    return placement;
  }

  /** Back on the source node, as compatible as the Migration asked. */
  static RestorePlacement placementOnSource(Migration migration) {
    RestorePlacement placement = new RestorePlacement();
    placement.nodeName = migration.getStatus().sourceNode;
    placement.compatibility = migration.getSpec().placementOrDefaults().compatibility;
    return placement;
  }

  static String sourceRestoreName(Migration migration) {
    return Names.shortened(migration.getMetadata().getName() + "-source", Names.MAX_OBJECT_NAME);
  }

  /**
   * Lets the checkpoint outlive the Migration (its owner reference removed): the workload runs
   * nowhere Stasis knows of, and the archive may be all that is left of it.
   */
  void keepCheckpoint(Migration migration) {
    release(checkpoint(migration));
  }

  /**
   * Lets the Restore whose pod the workload now runs in outlive the Migration: the pod belongs to
   * its Restore, and deleting the Migration must not delete the workload it moved.
   */
  void keepRestoredPod(Migration migration, Restore restore) {
    if (migration.getStatus().sourcePodUid != null) {
      release(restore);
    }
  }

  private void release(HasMetadata child) {
    if (child != null) {
      client.resource(child).patch(PatchContext.of(PatchType.JSON_MERGE), "{\"metadata\":{\"ownerReferences\":null}}");
    }
  }

  Pod pod(Migration migration, String name) {
    return client.pods().inNamespace(migration.getMetadata().getNamespace()).withName(name).get();
  }

  /** Whether the pod the Migration checkpointed (its UID) is there and not being deleted. */
  boolean sourcePodRuns(Migration migration) {
    Pod pod = pod(migration, migration.getSpec().target.pod.name);
    return pod != null && migration.getStatus().sourcePodUid.equals(pod.getMetadata().getUid())
        && pod.getMetadata().getDeletionTimestamp() == null;
  }

  /**
   * Whether the pod the Migration checkpointed (its UID) is gone; while it is not, deletes it, with
   * its own grace period. Called only once its checkpoint is stored and recorded Completed.
   */
  boolean sourcePodGone(Migration migration) {
    Pod pod = pod(migration, migration.getSpec().target.pod.name);
    if (pod == null || !migration.getStatus().sourcePodUid.equals(pod.getMetadata().getUid())) {
      return true;
    }
    if (pod.getMetadata().getDeletionTimestamp() == null) {
      client.resource(pod).delete();
    }
    return false;
  }

  Checkpoint checkpoint(Migration migration) {
    return owned(migration, client.resources(Checkpoint.class).inNamespace(migration.getMetadata().getNamespace())
        .withName(migration.getStatus().checkpoint).get());
  }

  Restore restore(Migration migration, String name) {
    return owned(migration, client.resources(Restore.class).inNamespace(migration.getMetadata().getNamespace())
        .withName(name).get());
  }

  private <R extends HasMetadata> String create(Migration migration, R child) throws Refusal {
    String name = child.getMetadata().getName();
    try {
      client.resource(child).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
      HasMetadata existing = client.resource(child).get();
      if (existing != null && !isOwnedBy(existing, migration)) {
        throw new Refusal("NameTaken", "a " + child.getKind() + " named '" + name + "' exists already and is not this"
            + " Migration's: the Migration names its " + child.getKind() + " after itself; rename the Migration or"
            + " delete that " + child.getKind());
      }
      // created by an earlier pass whose status write did not land
    }
    return name;
  }

  /** The child, if it is this Migration's (a same-named resource someone else made is not). */
  private static <R extends HasMetadata> R owned(Migration migration, R child) {
    return child != null && isOwnedBy(child, migration) ? child : null;
  }

  private static boolean isOwnedBy(HasMetadata child, Migration migration) {
    var refs = child.getMetadata().getOwnerReferences();
    return refs != null && refs.stream().anyMatch(r -> migration.getMetadata().getUid().equals(r.getUid()));
  }

  private static ObjectMeta metadata(Migration migration, String name) {
    return new ObjectMetaBuilder()
        .withName(name)
        .withNamespace(migration.getMetadata().getNamespace())
        .withLabels(Map.of(Labels.MIGRATION, Labels.migrationValue(migration.getMetadata().getName())))
        .withOwnerReferences(ownerReference(migration))
        .build();
  }

  /** blockOwnerDeletion false: a Migration's deletion never waits for its children. */
  private static OwnerReference ownerReference(Migration migration) {
    return new OwnerReferenceBuilder()
        .withApiVersion(migration.getApiVersion())
        .withKind(migration.getKind())
        .withName(migration.getMetadata().getName())
        .withUid(migration.getMetadata().getUid())
        .withController(true)
        .withBlockOwnerDeletion(false)
        .build();
  }
}
