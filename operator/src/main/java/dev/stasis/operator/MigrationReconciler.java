package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationRecovery;
import dev.stasis.api.MigrationStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.MigrationLifecycle;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.placement.CheckpointNeeds;
import dev.stasis.operator.placement.NodeProfileIndex;
import dev.stasis.operator.placement.PlacementDecision;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.informer.InformerEventSourceConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.EventSourceContext;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import io.javaoperatorsdk.operator.processing.event.source.EventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.InformerEventSource;
import io.javaoperatorsdk.operator.processing.event.source.informer.Mappers;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * Moves a target to another node through two children it owns: a Checkpoint that ends the workload
 * once its archive is stored, then a Restore of it elsewhere; when that Restore fails, a Restore on
 * the source node brings the workload back. Before anything is stopped it checks that some other
 * node could run a checkpoint of the target (NoCompatibleNode otherwise). Each pass looks at the
 * children and moves the Migration's phase ({@link MigrationLifecycle}); the children do the work.
 * A pod runs on through its checkpoint (the kubelet's leaves it running): once the archive is
 * stored, and the operator's part of the restore's pre-flight found a node for it, the Migration
 * deletes the pod, and restores only once it is gone, so that one copy runs.
 */
@ControllerConfiguration(name = "migration")
public class MigrationReconciler implements Reconciler<Migration> {
  /** A look at the children besides their own events, in case one was missed. */
  private static final Duration CHILD_POLL = Duration.ofSeconds(30);
  /** A look at a deleted source pod until it is gone (pods are not watched). */
  private static final Duration POD_POLL = Duration.ofSeconds(2);

  private final ClusterCache cluster;
  private final MigrationLifecycle lifecycle;
  private final MigrationChildren children;
  private final AgentLoss agentLoss;
  private final NodeProfileIndex nodeProfiles = new NodeProfileIndex();
  private final RestorePlanner planner;

  public MigrationReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events) {
    this(client, cluster, events, Clock.systemUTC());
  }

  MigrationReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events, Clock clock) {
    this.cluster = cluster;
    this.lifecycle = new MigrationLifecycle(client, events, StasisMetrics::migrationFinished);
    this.children = new MigrationChildren(client);
    this.agentLoss = new AgentLoss(cluster, clock);
    this.planner = new RestorePlanner(client, cluster, new StorageBinding(client, cluster), agentLoss);
  }

  /** Reconcile when a Migration's Checkpoint or Restore changes. */
  @Override
  public List<EventSource<?, Migration>> prepareEventSources(EventSourceContext<Migration> context) {
    return List.of(childInformer(Checkpoint.class, context), childInformer(Restore.class, context));
  }

  private static <C extends HasMetadata> InformerEventSource<C, Migration> childInformer(Class<C> kind,
      EventSourceContext<Migration> context) {
    return new InformerEventSource<>(InformerEventSourceConfiguration.from(kind, Migration.class)
        .withName("migration-" + kind.getSimpleName().toLowerCase())
        .withLabelSelector(Labels.MIGRATION)
        .withSecondaryToPrimaryMapper(Mappers.fromOwnerReferences(Migration.class))
        .build(), context);
  }

  @Override
  public UpdateControl<Migration> reconcile(Migration migration, Context<Migration> context) {
    MigrationStatus status = migration.getStatus();
    return switch (status == null ? MigrationPhase.Pending : status.phaseOrPending()) {
      case Pending -> begin(migration);
      case Checkpointing -> afterCheckpoint(migration);
      case Restoring -> status.sourceRestore == null ? afterRestore(migration) : afterSourceRestore(migration);
      case Completed, Failed -> UpdateControl.noUpdate();
    };
  }

  /** Validate, check that another node could take the target, then checkpoint it. */
  private UpdateControl<Migration> begin(Migration migration) {
    PlacementStatus placement = null;
    try {
      MigrationValidator.Source source = MigrationValidator.validate(migration, observed(migration));
      PlacementDecision decision = placeAhead(migration, source);
      placement = decision.status();
      if (decision.node().isEmpty()) {
        throw new Refusal("NoCompatibleNode", decision.summary());
      }
      String checkpoint = children.createCheckpoint(migration);
      lifecycle.checkpointing(migration, source.node(), source.pod() == null ? null : source.pod().getMetadata().getUid(),
          checkpoint, placement);
      return poll();
    } catch (Refusal refusal) {
      lifecycle.refuse(migration, refusal.reason(), refusal.getMessage(), placement);
      return UpdateControl.noUpdate();
    }
  }

  /**
   * Where a checkpoint of the target could go, judged by what its node offers: the restore itself
   * places it again with what the checkpoint recorded (paths, connections) and runs its pre-flight.
   */
  private PlacementDecision placeAhead(Migration migration, MigrationValidator.Source source) {
    CheckpointNeeds needs = CheckpointNeeds.ofTargetOn(source.node(), source.profile().getSpec(), source.pod() != null);
    var profiles = cluster.nodeProfiles();
    return nodeProfiles.placementOver(profiles)
        .place(needs, children.placementElsewhere(migration, source.node()), agentLoss.goneAmong(profiles));
  }

  private UpdateControl<Migration> afterCheckpoint(Migration migration) {
    Checkpoint checkpoint = children.checkpoint(migration);
    if (checkpoint == null) {
      lifecycle.checkpointFailed(migration, "CheckpointDeleted", "Checkpoint " + migration.getStatus().checkpoint
          + " was deleted before it completed: a tree it had stopped is resumed; check node "
          + migration.getStatus().sourceNode, MigrationRecovery.Unknown);
      return UpdateControl.noUpdate();
    }
    CheckpointPhase phase = checkpoint.getStatus() == null ? CheckpointPhase.Pending : checkpoint.getStatus().phaseOrPending();
    if (phase == CheckpointPhase.Failed) {
      String reason = checkpoint.getStatus().reason;
      if (migration.getStatus().sourcePodUid != null && !children.sourcePodRuns(migration)) {
        lifecycle.checkpointFailed(migration, reason, "the checkpoint failed: " + checkpoint.getStatus().message
            + ", and pod " + migration.getSpec().target.pod.name + " was deleted meanwhile (an eviction without a"
            + " PodDisruptionBudget that holds it back?): the workload runs nowhere; restore an earlier checkpoint of it",
            MigrationRecovery.NotRecovered);
        return UpdateControl.noUpdate();
      }
      boolean sourceLost = AgentLoss.REASON.equals(reason) || "ArchiveMissing".equals(reason);
      lifecycle.checkpointFailed(migration, reason, "the checkpoint failed: " + checkpoint.getStatus().message
          + (sourceLost ? "" : ". The workload was not moved and runs on on node " + migration.getStatus().sourceNode),
          sourceLost ? MigrationRecovery.Unknown : MigrationRecovery.SourceRunning);
      return UpdateControl.noUpdate();
    }
    if (phase != CheckpointPhase.Completed) {
      lifecycle.progress(migration, checkpoint.getStatus() == null ? null : checkpoint.getStatus().progress);
      return poll();
    }
    Restore restoreElsewhere = children.restore(migration, migration.getMetadata().getName(),
        children.placementElsewhere(migration, migration.getStatus().sourceNode));
    if (migration.getStatus().sourcePodUid != null && children.sourcePodRuns(migration)
        && !placedBeforeThePodGoes(migration, checkpoint, restoreElsewhere)) {
      return UpdateControl.noUpdate();
    }
    if (migration.getStatus().sourcePodUid != null && !children.sourcePodGone(migration)) {
      return UpdateControl.<Migration>noUpdate().rescheduleAfter(POD_POLL);
    }
    try {
      String restore = children.createRestore(migration, migration.getMetadata().getName(),
          restoreElsewhere.getSpec().placement);
      lifecycle.restoring(migration, restore);
    } catch (Refusal refusal) {
      restoreOnSource(migration, refusal.reason(), refusal.getMessage());
    }
    return poll();
  }

  /**
   * The operator's part of the restore's pre-flight (RestorePlanner), on the stored checkpoint, before
   * its pod is deleted: the pod of a checkpoint that no node can take runs on untouched, and the
   * Migration fails saying why. The agent's own pre-flight on the chosen node runs with the Restore.
   */
  private boolean placedBeforeThePodGoes(Migration migration, Checkpoint checkpoint, Restore restoreElsewhere) {
    PlacementStatus placement = null;
    try {
      PlacementDecision decision = planner.plan(restoreElsewhere, checkpoint, Map.of()).decision();
      placement = decision.status();
      if (decision.node().isEmpty()) {
        throw new Refusal("NoCompatibleNode", decision.summary());
      }
      return true;
    } catch (Refusal refusal) {
      lifecycle.notPlaced(migration, refusal.reason(), "no node can take checkpoint " + migration.getStatus().checkpoint
          + " of pod " + migration.getSpec().target.pod.name + ": " + refusal.getMessage(), placement);
      return false;
    }
  }

  private UpdateControl<Migration> afterRestore(Migration migration) {
    Restore restore = children.restore(migration, migration.getStatus().restore);
    if (restore == null) {
      restoreOnSource(migration, "RestoreDeleted", "Restore " + migration.getStatus().restore
          + " was deleted before it completed");
      return poll();
    }
    RestorePhase phase = restore.getStatus() == null ? RestorePhase.Pending : restore.getStatus().phaseOrPending();
    if (phase == RestorePhase.Completed) {
      children.keepRestoredPod(migration, restore);
      lifecycle.complete(migration, restore.getStatus(), frozenToRunning(migration, restore));
      return UpdateControl.noUpdate();
    }
    if (phase != RestorePhase.Failed) {
      lifecycle.progress(migration, restore.getStatus() == null ? null : restore.getStatus().progress);
      return poll();
    }
    String reason = restore.getStatus().reason;
    String message = "the restore elsewhere failed: " + restore.getStatus().message;
    if (AgentLoss.REASON.equals(reason)) {
      // Its CRIU may have restored the tree before the agent was lost: a second copy must never run.
      children.keepCheckpoint(migration);
      lifecycle.restoreFailed(migration, reason, message + ". Not restored on the source node, so that the workload"
          + " never runs twice; once you know whether it runs on node " + restore.getStatus().node + ", restore Checkpoint "
          + migration.getStatus().checkpoint + " yourself (it is kept when the Migration is deleted)",
          MigrationRecovery.Unknown, null, null);
      return UpdateControl.noUpdate();
    }
    restoreOnSource(migration, reason, message);
    return poll();
  }

  /** The restore elsewhere failed, with nothing restored: the workload comes back on its source node. */
  private void restoreOnSource(Migration migration, String reason, String message) {
    String name = MigrationChildren.sourceRestoreName(migration);
    try {
      children.createRestore(migration, name, MigrationChildren.placementOnSource(migration));
      lifecycle.restoringOnSource(migration, name, reason, message);
    } catch (Refusal refusal) {
      children.keepCheckpoint(migration);
      lifecycle.restoreFailed(migration, reason, message + ". Could not restore it on the source node either: "
          + refusal.getMessage() + ". Checkpoint " + migration.getStatus().checkpoint
          + " is kept when the Migration is deleted: restore it", MigrationRecovery.NotRecovered, null, null);
    }
  }

  private UpdateControl<Migration> afterSourceRestore(Migration migration) {
    Restore restore = children.restore(migration, migration.getStatus().sourceRestore);
    RestorePhase phase = restore == null ? RestorePhase.Failed
        : restore.getStatus() == null ? RestorePhase.Pending : restore.getStatus().phaseOrPending();
    if (phase == RestorePhase.Completed) {
      children.keepRestoredPod(migration, restore);
      lifecycle.restoreFailed(migration, migration.getStatus().reason, migration.getStatus().message
          + ": done, it runs again on node " + restore.getStatus().node, MigrationRecovery.RestoredOnSource,
          restore.getStatus(), frozenToRunning(migration, restore));
      return UpdateControl.noUpdate();
    }
    if (phase != RestorePhase.Failed) {
      lifecycle.progress(migration, restore.getStatus() == null ? null : restore.getStatus().progress);
      return poll();
    }
    children.keepCheckpoint(migration);
    String why = restore == null ? "Restore " + migration.getStatus().sourceRestore + " was deleted"
        : restore.getStatus().reason + ": " + restore.getStatus().message;
    lifecycle.restoreFailed(migration, migration.getStatus().reason, migration.getStatus().message
        + "; that failed too (" + why + "). Checkpoint " + migration.getStatus().checkpoint
        + " is kept when the Migration is deleted: restore it", MigrationRecovery.NotRecovered, null, null);
    return UpdateControl.noUpdate();
  }

  /** What validation needs of the cluster, looked up when it asks. */
  private MigrationValidator.Observed observed(Migration migration) {
    return new MigrationValidator.Observed() {
      @Override
      public NodeProfile nodeProfile(String node) {
        return cluster.nodeProfile(node);
      }

      @Override
      public Pod pod(String name) {
        return children.pod(migration, name);
      }
    };
  }

  /** From the checkpoint's start, which froze the workload and left it stopped, to the restored tree running. */
  private Duration frozenToRunning(Migration migration, Restore restore) {
    Checkpoint checkpoint = children.checkpoint(migration);
    if (checkpoint == null || checkpoint.getStatus() == null || checkpoint.getStatus().startTime == null
        || restore.getStatus().completionTime == null) {
      return null;
    }
    return Duration.between(Instant.parse(checkpoint.getStatus().startTime), Instant.parse(restore.getStatus().completionTime));
  }

  private static UpdateControl<Migration> poll() {
    return UpdateControl.<Migration>noUpdate().rescheduleAfter(CHILD_POLL);
  }
}
