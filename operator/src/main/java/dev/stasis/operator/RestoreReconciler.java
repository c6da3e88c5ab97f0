package dev.stasis.operator;

import static dev.stasis.operator.RestoreValidator.isPodCheckpoint;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.api.SealedGrant;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.RestoreLifecycle;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.placement.PlacementDecision;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks that a Restore names a Completed Checkpoint of its own namespace, picks the node to
 * restore on from the NodeProfiles, and hands the Restore to that node's agent.
 */
@ControllerConfiguration(name = "restore", generationAwareEventProcessing = false)
public class RestoreReconciler implements Reconciler<Restore>, Cleaner<Restore> {
  private static final Logger log = LoggerFactory.getLogger(RestoreReconciler.class);
  private static final Duration CHECKPOINT_POLL = Duration.ofSeconds(5);

  private final KubernetesClient client;
  private final ClusterCache cluster;
  private final Clock clock;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final RestoreLifecycle lifecycle;
  private final PodRestores podRestores;
  private final CheckpointImages checkpointImages;
  private final RefusalRetries retries;
  private final AgentLoss agentLoss;
  private final GrantIssuer grants;
  private final RestorePlanner planner;

  public RestoreReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events, RetryPolicy retryPolicy) {
    this(client, cluster, events, retryPolicy, Clock.systemUTC());
  }

  RestoreReconciler(KubernetesClient client, ClusterCache cluster, EventRecorder events, RetryPolicy retryPolicy,
      Clock clock) {
    this.client = client;
    this.cluster = cluster;
    this.clock = clock;
    this.storages = new StorageBinding(client, cluster);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.lifecycle = new RestoreLifecycle(client, events, StasisMetrics::restoreFinished);
    this.checkpointImages = new CheckpointImages(client, storages, statusWriter, events, clock);
    this.podRestores = new PodRestores(client, storages, lifecycle, checkpointImages);
    this.retries = new RefusalRetries(retryPolicy, clock);
    this.agentLoss = new AgentLoss(cluster, clock);
    this.grants = new GrantIssuer(cluster, storages, new ChunkSecrets(client), GrantIssuer.ChunkKeyGate.NEVER_ASKED);
    this.planner = new RestorePlanner(client, cluster, storages, agentLoss);
  }

  @Override
  public UpdateControl<Restore> reconcile(Restore restore, Context<Restore> context) {
    RestoreStatus observed = restore.getStatus();
    if (observed != null && observed.phase == RestorePhase.Restoring && observed.checkpointImages != null) {
      return podRestores.progress(restore); // a pod checkpoint's images are pushed: the pod is ours to make
    }
    if (observed != null && observed.phase != null && observed.phase != RestorePhase.Pending) {
      if (observed.phase.isTerminal()) {
        lifecycle.observeGeneration(restore);
        return checkpointImages.deleteWhenDue(restore).map(due -> UpdateControl.<Restore>noUpdate().rescheduleAfter(due))
            .orElse(UpdateControl.noUpdate());
      }
      resealWhenTheNodeKeyChanged(restore);
      return failWhenAgentGone(restore);
    }
    if (observed != null && observed.node != null && observed.node.equals(Labels.node(restore))
        && agentLoss.gone(observed.node).isEmpty()) {
      // the agent's to take; placed again below only if that agent is gone before it did
      resealWhenTheNodeKeyChanged(restore);
      return UpdateControl.<Restore>noUpdate().rescheduleAfter(AgentHeartbeat.CHECK_INTERVAL);
    }
    Optional<Duration> retryDue = retries.untilRetry(observed);
    if (retryDue.isPresent()) {
      return UpdateControl.<Restore>noUpdate().rescheduleAfter(retryDue.get());
    }
    try {
      Checkpoint checkpoint = RestoreValidator.checkpointToRestore(restore, observed(restore)).orElse(null);
      if (checkpoint == null) {
        waitFor(restore);
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(CHECKPOINT_POLL);
      }
      List<PlacementStatus.PreflightFailure> preflightFailures = preflightFailures(observed);
      if (preflightFailures.size() >= PlacementStatus.MAX_PREFLIGHT_FAILURES) {
        giveUpAfterPreflights(restore, observed.placement);
        return UpdateControl.noUpdate();
      }
      RestorePlanner.Plan plan = planner.plan(restore, checkpoint, preflightExcluded(preflightFailures));
      List<RecordedManifest> manifests = plan.manifests();
      PlacementDecision decision = plan.decision();
      if (preflightFailures.isEmpty() && decision.mayPlaceSoon()) {
        throw new Refusal(RetryPolicy.RUNTIME_UNREACHABLE, decision.summary()); // waits, as spec.backoffLimit allows
      } else if (decision.node().isEmpty()) {
        refuse(restore, decision, preflightFailures);
      } else {
        String node = decision.node().get();
        SealedGrant grant = grants.forRestore(restore, planner.storageOf(checkpoint), node, manifests, isPodCheckpoint(checkpoint))
            .orElse(null);
        assign(restore, checkpoint.getMetadata().getName(), decision, preflightFailures, grant);
      }
    } catch (Refusal refusal) {
      RestoreStatus waiting = RestoreLifecycle.pending(restore);
      waiting.placement = observed == null ? null : observed.placement;
      Optional<Duration> retryIn = retries.retryLater(lifecycle, restore, refusal, backoffLimit(restore), waiting);
      if (retryIn.isPresent()) {
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(retryIn.get());
      }
      fail(restore, refusal, null);
    }
    return UpdateControl.noUpdate();
  }

  /** A deleted Restore takes its checkpoint images along (its restored pod goes by its owner reference). */
  @Override
  public DeleteControl cleanup(Restore restore, Context<Restore> context) {
    return checkpointImages.deletedWith(restore) ? DeleteControl.defaultDelete()
        : DeleteControl.noFinalizerRemoval().rescheduleAfter(CheckpointImages.RETRY);
  }

  private static int backoffLimit(Restore restore) {
    return restore.getSpec() == null ? 0 : restore.getSpec().backoffLimitOrDefault();
  }

  /** What validation needs of the cluster, looked up when it asks. */
  private RestoreValidator.Observed observed(Restore restore) {
    String namespace = restore.getMetadata().getNamespace();
    return new RestoreValidator.Observed() {
      @Override
      public Checkpoint checkpoint(String name) {
        return client.resources(Checkpoint.class).inNamespace(namespace).withName(name).get();
      }

      @Override
      public List<Checkpoint> ofSchedule(String schedule) {
        return client.resources(Checkpoint.class).inNamespace(namespace).withLabel(Labels.SCHEDULE, schedule).list()
            .getItems();
      }

      @Override
      public CheckpointStorage storage(String name) {
        return storages.find(name);
      }
    };
  }

  /** The node's agent published a new key (its old one went with its work folder): its grant is sealed again. */
  private void resealWhenTheNodeKeyChanged(Restore restore) {
    if (!grants.sealedToAnotherKey(restore.getStatus())) {
      return;
    }
    try {
      Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(restore.getMetadata().getNamespace())
          .withName(restore.checkpointName()).get();
      if (checkpoint == null) {
        return; // the agent says so
      }
      SealedGrant grant = grants.forRestore(restore, planner.storageOf(checkpoint), restore.getStatus().node,
          planner.manifests(checkpoint), isPodCheckpoint(checkpoint)).orElse(null);
      lifecycle.reseal(restore, grant);
    } catch (Refusal refusal) {
      log.warn("cannot seal the grant of restore {}/{} again: {}", restore.getMetadata().getNamespace(),
          restore.getMetadata().getName(), refusal.getMessage());
    }
  }

  /** Nodes where this restore's pre-flight failed: no restore goes there again, whatever they offer. */
  private static Map<String, String> preflightExcluded(List<PlacementStatus.PreflightFailure> preflightFailures) {
    Map<String, String> excluded = new HashMap<>();
    preflightFailures.forEach(f -> excluded.put(f.node, "pre-flight failed (" + f.reason + ")"));
    return excluded;
  }

  /**
   * A restore the agent has begun cannot move: whether its process already runs is known only to
   * that agent. If the agent is gone, the restore fails instead of waiting forever.
   */
  private UpdateControl<Restore> failWhenAgentGone(Restore restore) {
    String node = restore.getStatus().node;
    return agentLoss.failWhenGone(restore, lifecycle, gone -> gone + ", in the middle of this"
        + " restore. Whether its process started is known only to that agent; check node " + node
        + " before restoring the checkpoint again");
  }

  /** Nodes whose agent found, in its pre-flight, that it cannot run this checkpoint (retryOtherNodes). */
  private static List<PlacementStatus.PreflightFailure> preflightFailures(RestoreStatus observed) {
    return observed == null || observed.placement == null ? List.of() : observed.placement.preflightFailures;
  }

  private void waitFor(Restore restore) {
    lifecycle.waitForCheckpoint(restore, restore.getSpec().checkpointRef.name);
  }

  private void assign(Restore restore, String checkpoint, PlacementDecision decision,
      List<PlacementStatus.PreflightFailure> preflightFailures, SealedGrant grant) {
    String node = decision.node().orElseThrow();
    lifecycle.assign(restore, checkpoint, node, grant, placementStatus(decision, preflightFailures));
    if (preflightFailures.isEmpty()) {
      events.normal(restore, "Placed", "restoring on node " + decision.summary());
    } else {
      PlacementStatus.PreflightFailure last = preflightFailures.get(preflightFailures.size() - 1);
      events.normal(restore, "RetryingOnAnotherNode", "pre-flight failed on node " + last.node + " (" + last.reason
          + "); trying node " + node + " next (spec.placement.retryOtherNodes): " + decision.summary());
    }
  }

  /**
   * No node can run the checkpoint. When pre-flights ruled out the last candidates, their reason
   * (e.g. PreflightPathMissing) says more than NoCompatibleNode, and the last one's findings follow.
   */
  private void refuse(Restore restore, PlacementDecision decision, List<PlacementStatus.PreflightFailure> preflightFailures) {
    Refusal refusal;
    if (preflightFailures.isEmpty()) {
      refusal = new Refusal("NoCompatibleNode", decision.summary());
    } else {
      PlacementStatus.PreflightFailure last = preflightFailures.get(preflightFailures.size() - 1);
      refusal = new Refusal(last.reason, decision.summary() + ". " + last.message);
    }
    fail(restore, refusal, placementStatus(decision, preflightFailures));
  }

  /**
   * spec.placement.retryOtherNodes tries {@value PlacementStatus#MAX_PREFLIGHT_FAILURES} nodes, no
   * more: what that many nodes could not run will hardly run on the next, and the status stays small.
   */
  private void giveUpAfterPreflights(Restore restore, PlacementStatus placement) {
    List<PlacementStatus.PreflightFailure> failures = placement.preflightFailures;
    PlacementStatus.PreflightFailure last = failures.get(failures.size() - 1);
    fail(restore, new Refusal(last.reason, "the pre-flight failed on " + failures.size() + " nodes ("
        + String.join(", ", failures.stream().map(f -> f.node).toList()) + "), as many as"
        + " spec.placement.retryOtherNodes tries. The last: " + last.message), placement);
  }

  private static PlacementStatus placementStatus(PlacementDecision decision, List<PlacementStatus.PreflightFailure> preflightFailures) {
    PlacementStatus placement = decision.status();
    placement.preflightFailures.addAll(preflightFailures);
    return placement;
  }

  private void fail(Restore restore, Refusal refusal, PlacementStatus placement) {
    retries.fail(lifecycle, restore, refusal, backoffLimit(restore), RestoreLifecycle.refused(placement));
  }
}
