package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Conditions;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.api.ScheduleRef;
import dev.stasis.api.SealedGrant;
import dev.stasis.api.StatusLimits;
import dev.stasis.api.NodeProfile;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.placement.CheckpointNeeds;
import dev.stasis.operator.placement.NodeProfileIndex;
import dev.stasis.operator.placement.PlacementDecision;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Cleaner;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.DeleteControl;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
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
  /** RFC 3339 times in UTC sort as text. */
  private static final Comparator<String> NULLS_FIRST = Comparator.nullsFirst(Comparator.naturalOrder());


  private final KubernetesClient client;
  private final ClusterCache cluster;
  private final Clock clock;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final NodeProfileIndex nodeProfiles = new NodeProfileIndex();
  private final PodRestores podRestores;
  private final CheckpointImages checkpointImages;
  private final RefusalRetries retries;
  private final AgentLoss agentLoss;
  private final GrantIssuer grants;

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
    this.checkpointImages = new CheckpointImages(client, storages, statusWriter, events, clock);
    this.podRestores = new PodRestores(client, storages, statusWriter, events, checkpointImages);
    this.retries = new RefusalRetries(retryPolicy, statusWriter, events, clock);
    this.agentLoss = new AgentLoss(cluster, statusWriter, events, clock);
    this.grants = new GrantIssuer(cluster, storages);
  }

  @Override
  public UpdateControl<Restore> reconcile(Restore restore, Context<Restore> context) {
    RestoreStatus observed = restore.getStatus();
    if (observed != null && observed.phase == RestorePhase.Restoring && observed.checkpointImages != null) {
      return podRestores.progress(restore); // a pod checkpoint's images are pushed: the pod is ours to make
    }
    if (observed != null && observed.phase != null && observed.phase != RestorePhase.Pending) {
      if (observed.phase.isTerminal()) {
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
      Checkpoint checkpoint = completedCheckpoint(restore);
      if (checkpoint == null) {
        waitFor(restore);
        return UpdateControl.<Restore>noUpdate().rescheduleAfter(CHECKPOINT_POLL);
      }
      List<RecordedManifest> manifests = recordedManifests(checkpoint);
      if (isPodCheckpoint(checkpoint)) {
        podRestores.requireRestorable(restore, manifests.get(0).manifest());
      }
      CheckpointNeeds needs = needsOf(manifests);
      List<PlacementStatus.PreflightFailure> preflightFailures = preflightFailures(observed);
      if (preflightFailures.size() >= PlacementStatus.MAX_PREFLIGHT_FAILURES) {
        giveUpAfterPreflights(restore, observed.placement);
        return UpdateControl.noUpdate();
      }
      List<NodeProfile> profiles = cluster.nodeProfiles();
      PlacementDecision decision = nodeProfiles.placementOver(profiles)
          .place(needs, restore.getSpec().placement, excludedNodes(profiles, preflightFailures));
      if (decision.node().isEmpty()) {
        refuse(restore, decision, preflightFailures);
      } else {
        String node = decision.node().get();
        SealedGrant grant = grants.forRestore(restore, storageOf(checkpoint), node, manifests, isPodCheckpoint(checkpoint))
            .orElse(null);
        assign(restore, checkpoint.getMetadata().getName(), decision, preflightFailures, grant);
      }
    } catch (Refusal refusal) {
      RestoreStatus waiting = pending(restore);
      waiting.placement = observed == null ? null : observed.placement;
      Optional<Duration> retryIn = retries.retryLater(restore, refusal, backoffLimit(restore), waiting);
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

  /** A fresh Pending status naming the checkpoint asked for, when it names one. */
  private static RestoreStatus pending(Restore restore) {
    RestoreStatus status = new RestoreStatus();
    status.phase = RestorePhase.Pending;
    if (restore.getSpec() != null && restore.getSpec().checkpointRef != null) {
      status.checkpoint = restore.getSpec().checkpointRef.name;
    }
    return status;
  }

  /** The named Checkpoint once Completed; null while it is still being taken. */
  private Checkpoint completedCheckpoint(Restore restore) throws Refusal {
    var spec = restore.getSpec();
    String namespace = restore.getMetadata().getNamespace();
    if (spec != null && spec.scheduleRef != null && spec.checkpointRef == null) {
      Checkpoint newest = newestOfSchedule(namespace, spec.scheduleRef);
      if (isPodCheckpoint(newest)) {
        requireRegistry(newest);
      }
      return newest;
    }
    if (spec == null || spec.checkpointRef == null || spec.checkpointRef.name == null || spec.scheduleRef != null) {
      throw new Refusal("InvalidCheckpointRef", "set exactly one of spec.checkpointRef.name (the Checkpoint to restore)"
          + " or spec.scheduleRef.name (a schedule whose newest Completed checkpoint to restore)");
    }
    if (spec.checkpointRef.namespace != null && !spec.checkpointRef.namespace.equals(namespace)) {
      throw new Refusal("CrossNamespaceCheckpoint", "a Restore may only use Checkpoints of its own namespace ("
          + namespace + "), not of " + spec.checkpointRef.namespace
          + ": create the Restore in that namespace instead");
    }
    Checkpoint checkpoint =
        client.resources(Checkpoint.class).inNamespace(namespace).withName(spec.checkpointRef.name).get();
    if (checkpoint == null) {
      throw new Refusal("CheckpointNotFound", "Checkpoint '" + spec.checkpointRef.name + "' does not exist in namespace "
          + namespace + ": fix spec.checkpointRef.name (kubectl get ckpt -n " + namespace + ")");
    }
    if (checkpoint.isMarkedForDeletion()) {
      // Restores placed before the deletion keep its archive until they are done; no new one starts.
      throw new Refusal("CheckpointDeleted", "Checkpoint '" + spec.checkpointRef.name + "' is being deleted:"
          + " restore another checkpoint");
    }
    CheckpointPhase phase = checkpoint.getStatus() == null ? CheckpointPhase.Pending : checkpoint.getStatus().phaseOrPending();
    if (phase == CheckpointPhase.Failed) {
      throw new Refusal("CheckpointNotCompleted", "Checkpoint '" + spec.checkpointRef.name
          + "' failed (" + checkpoint.getStatus().reason + ") and has no archive to restore: restore another checkpoint");
    }
    if (phase == CheckpointPhase.Completed && isPodCheckpoint(checkpoint)) {
      requireRegistry(checkpoint);
    }
    return phase == CheckpointPhase.Completed ? checkpoint : null;
  }

  private static boolean isPodCheckpoint(Checkpoint checkpoint) {
    return checkpoint.getSpec() != null && checkpoint.getSpec().target != null && checkpoint.getSpec().target.pod != null;
  }

  /** Pod checkpoints come back as checkpoint images, which need the storage's registry. */
  private void requireRegistry(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
    if (storage == null) {
      throw new Refusal("StorageNotFound", "CheckpointStorage '" + checkpoint.getStatus().storage
          + "' holding the checkpoint no longer exists");
    }
    if (storage.getSpec() == null || storage.getSpec().registry == null) {
      throw new Refusal("RegistryNotConfigured", "CheckpointStorage '" + storage.getMetadata().getName()
          + "' names no registry: pod checkpoints are restored from checkpoint images, so set spec.registry on it");
    }
  }

  /**
   * The newest Completed checkpoint a schedule took (by run or drain), whether or not the schedule
   * still exists; of {@code ref.pod} when named, which is required once the schedule has
   * checkpoints of several selected pods.
   */
  private Checkpoint newestOfSchedule(String namespace, ScheduleRef ref) throws Refusal {
    String schedule = ref.name;
    List<Checkpoint> completed = client.resources(Checkpoint.class).inNamespace(namespace)
        .withLabel(Labels.SCHEDULE, schedule).list().getItems().stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed)
        .filter(c -> !c.isMarkedForDeletion())
        .toList();
    String listing = "kubectl get ckpt -n " + namespace + " -l " + Labels.SCHEDULE + "=" + schedule;
    Set<String> selectedPods = completed.stream()
        .filter(c -> ScheduleCheckpoints.podLabel(c) != null && isPodCheckpoint(c))
        .map(c -> c.getSpec().target.pod.name).collect(Collectors.toCollection(TreeSet::new));
    if (ref.pod != null) {
      List<Checkpoint> ofPod = completed.stream()
          .filter(c -> isPodCheckpoint(c) && ref.pod.equals(c.getSpec().target.pod.name)).toList();
      if (ofPod.isEmpty()) {
        throw new Refusal("NoCompletedCheckpoint", "schedule '" + schedule + "' has no Completed checkpoint of pod '"
            + ref.pod + "' in namespace " + namespace + (selectedPods.isEmpty() ? "" : "; it has some of pods "
            + String.join(", ", selectedPods)) + " (" + listing + "): fix spec.scheduleRef.pod, or wait for one");
      }
      return newest(ofPod);
    }
    if (selectedPods.size() > 1) {
      throw new Refusal("PodRequired", "schedule '" + schedule + "' has checkpoints of several pods ("
          + String.join(", ", selectedPods) + "): set spec.scheduleRef.pod to the one to restore");
    }
    if (completed.isEmpty()) {
      throw new Refusal("NoCompletedCheckpoint", "schedule '" + schedule + "' has no Completed checkpoint in namespace "
          + namespace + " (" + listing + "): wait for one, or restore a Checkpoint by name with spec.checkpointRef");
    }
    return newest(completed);
  }

  private static Checkpoint newest(List<Checkpoint> checkpoints) {
    return checkpoints.stream().max(Comparator.comparing((Checkpoint c) -> c.getStatus().completionTime, NULLS_FIRST)
        .thenComparing(c -> c.getMetadata().getCreationTimestamp(), NULLS_FIRST)).orElseThrow();
  }

  /** The checkpoint's manifests as its status recorded them: one per container of a pod checkpoint, or one. */
  private List<RecordedManifest> recordedManifests(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storageOf(checkpoint);
    List<String> containers = isPodCheckpoint(checkpoint)
        ? checkpoint.getStatus().containers.stream().map(c -> c.name).toList() : Collections.singletonList(null);
    try (ObjectStore store = storages.open(storage)) {
      List<RecordedManifest> manifests = new ArrayList<>();
      for (String container : containers) {
        manifests.add(RecordedManifest.read(store, checkpoint, container));
      }
      return manifests;
    } catch (StoredCheckpointException e) {
      throw new Refusal(e.reason(), e.getMessage());
    } catch (IOException e) {
      throw new Refusal("StorageUnavailable", "cannot read the checkpoint's manifest: " + e.getMessage());
    }
  }

  private CheckpointStorage storageOf(Checkpoint checkpoint) throws Refusal {
    CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
    if (storage == null) {
      throw new Refusal("StorageNotFound", "CheckpointStorage '" + checkpoint.getStatus().storage
          + "' holding the checkpoint no longer exists");
    }
    return storage;
  }

  /** What the checkpoint needs from a node, as the agent recorded it in the manifest (a pod's containers share it). */
  private static CheckpointNeeds needsOf(List<RecordedManifest> manifests) throws Refusal {
    try {
      return CheckpointNeeds.of(manifests.get(0).manifest());
    } catch (IllegalArgumentException e) {
      throw new Refusal("ManifestInvalid", e.getMessage());
    }
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
      SealedGrant grant = grants.forRestore(restore, storageOf(checkpoint), restore.getStatus().node,
          recordedManifests(checkpoint), isPodCheckpoint(checkpoint)).orElse(null);
      statusWriter.update(restore, r -> r.getStatus() != null && !r.getStatus().phaseOrPending().isTerminal(),
          r -> r.getStatus().grant = grant);
    } catch (Refusal refusal) {
      log.warn("cannot seal the grant of restore {}/{} again: {}", restore.getMetadata().getNamespace(),
          restore.getMetadata().getName(), refusal.getMessage());
    }
  }

  /** Nodes no restore goes to, whatever they offer: this restore's pre-flight failed there, or their agent is gone. */
  private Map<String, String> excludedNodes(List<NodeProfile> profiles,
      List<PlacementStatus.PreflightFailure> preflightFailures) {
    Map<String, String> excluded = new HashMap<>();
    for (NodeProfile profile : profiles) {
      String node = profile.getMetadata().getName();
      agentLoss.gone(node, profile).ifPresent(why -> excluded.put(node, why));
    }
    preflightFailures.forEach(f -> excluded.put(f.node, "pre-flight failed (" + f.reason + ")"));
    return excluded;
  }

  /**
   * A restore the agent has begun cannot move: whether its process already runs is known only to
   * that agent. If the agent is gone, the restore fails instead of waiting forever.
   */
  private UpdateControl<Restore> failWhenAgentGone(Restore restore) {
    String node = restore.getStatus().node;
    return agentLoss.failWhenGone(restore, RestoreStatus::phaseOrPending, gone -> gone + ", in the middle of this"
        + " restore. Whether its process started is known only to that agent; check node " + node
        + " before restoring the checkpoint again", StasisMetrics::restoreFinished);
  }

  /** Nodes whose agent found, in its pre-flight, that it cannot run this checkpoint (retryOtherNodes). */
  private static List<PlacementStatus.PreflightFailure> preflightFailures(RestoreStatus observed) {
    return observed == null || observed.placement == null ? List.of() : observed.placement.preflightFailures;
  }

  private void waitFor(Restore restore) {
    RestoreStatus status = pending(restore);
    status.reason = "CheckpointInProgress";
    status.message = "waiting for Checkpoint '" + restore.getSpec().checkpointRef.name + "' to complete";
    status.observedGeneration = restore.getMetadata().getGeneration();
    Conditions.set(status, Conditions.COMPLETE, false, status.reason, status.message, status.observedGeneration);
    statusWriter.replace(restore, status);
  }

  private void assign(Restore restore, String checkpoint, PlacementDecision decision,
      List<PlacementStatus.PreflightFailure> preflightFailures, SealedGrant grant) {
    String node = decision.node().orElseThrow();
    RestoreStatus status = pending(restore);
    RefusalRetries.carryAttempts(restore, status);
    status.checkpoint = checkpoint;
    status.node = node;
    status.grant = grant;
    status.placement = placementStatus(decision, preflightFailures);
    status.message = "waiting for the agent on node " + node;
    status.observedGeneration = restore.getMetadata().getGeneration();
    Conditions.set(status, Conditions.COMPLETE, false, "Pending", status.message, status.observedGeneration);
    handOver(restore, status, node);
    if (preflightFailures.isEmpty()) {
      events.normal(restore, "Placed", "restoring on node " + decision.summary());
    } else {
      PlacementStatus.PreflightFailure last = preflightFailures.get(preflightFailures.size() - 1);
      events.normal(restore, "RetryingOnAnotherNode", "pre-flight failed on node " + last.node + " (" + last.reason
          + "); trying node " + node + " next (spec.placement.retryOtherNodes): " + decision.summary());
    }
  }

  /**
   * Hands the restore to the agent of {@code node}: the status first, then the label its agent
   * watches. Both writes are conditional on the version the decision was made on, so an agent that
   * took the restore meanwhile (it came back while it looked gone) keeps it, and no second agent
   * ever sees it: the status write fails with a conflict and the restore is looked at afresh. An
   * agent that sees its node's label but another node in the status does not take the work.
   */
  private void handOver(Restore decidedOn, RestoreStatus status, String node) {
    Labels.assign(client, statusWriter.replace(decidedOn, status), node);
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
    PlacementStatus placement = new PlacementStatus();
    placement.summary = decision.summary();
    placement.candidates = decision.candidates();
    decision.rejected().stream().limit(StatusLimits.MAX_LISTED)
        .forEach(r -> placement.rejected.add(new PlacementStatus.NodeRejection(r.node(), r.reasons())));
    placement.rejectedCount = decision.rejected().size();
    placement.rejectedReasons = decision.reasonCounts(StatusLimits.MAX_REASONS);
    placement.preflightFailures.addAll(preflightFailures);
    return placement;
  }

  private void fail(Restore restore, Refusal refusal, PlacementStatus placement) {
    RestoreStatus status = new RestoreStatus();
    status.placement = placement;
    retries.fail(restore, refusal, backoffLimit(restore), status);
    statusWriter.replace(restore, status);
    events.warning(restore, refusal.reason(), status.message);
    StasisMetrics.restoreFinished(status);
  }
}
