package dev.stasis.kube;

import dev.stasis.api.CheckpointImageStatus;
import dev.stasis.api.Conditions;
import dev.stasis.api.PlacementStatus;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.api.SealedGrant;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Every way a Restore's status moves, who moves it, and when it may (docs/lifecycles.md has the
 * table). Pending (the operator's: it waits for the Checkpoint and places the Restore) → Pending on
 * a node (that node's agent's) → Restoring (the agent's: pre-flight, download, CRIU; or, for a pod
 * checkpoint, pushing its images) → Completed or Failed. The agent may hand a Restore whose
 * pre-flight failed back to the operator (Pending without a node) to be placed on the next node;
 * the operator fails work whose agent is gone. For a pod checkpoint, once the agent pushed its
 * images, the operator makes the pod and completes or fails the Restore. Nobody moves a Failed
 * restore; the agent of a Completed process restore records when the restored tree ends.
 */
public final class RestoreLifecycle extends WorkLifecycle<RestoreStatus, Restore> {

  /** @param finished told of every Restore that ended (the role's metrics) */
  public RestoreLifecycle(KubernetesClient client, EventRecorder events, Consumer<RestoreStatus> finished) {
    super(client, events, finished);
  }

  @Override
  protected Object phase(RestoreStatus status) {
    return status.phaseOrPending();
  }

  @Override
  protected boolean isPending(RestoreStatus status) {
    return status.phase == RestorePhase.Pending;
  }

  /** Restoring, before the images of a pod checkpoint were pushed: after that, the operator makes the pod. */
  @Override
  protected boolean isAgentsPart(RestoreStatus status) {
    return status.phase == RestorePhase.Restoring && status.checkpointImages == null;
  }

  @Override
  protected boolean isTerminal(RestoreStatus status) {
    return status.phaseOrPending().isTerminal();
  }

  @Override
  protected void toPending(RestoreStatus status) {
    status.phase = RestorePhase.Pending;
    status.startTime = null;
  }

  /** A fresh Pending status naming the checkpoint asked for, when it names one: for the operator's decisions. */
  public static RestoreStatus pending(Restore restore) {
    RestoreStatus status = new RestoreStatus();
    status.phase = RestorePhase.Pending;
    if (restore.getSpec() != null && restore.getSpec().checkpointRef != null) {
      status.checkpoint = restore.getSpec().checkpointRef.name;
    }
    return status;
  }

  /** A fresh status for the operator's refusal, which {@link #refuse} fills in; where placement got to, if anywhere. */
  public static RestoreStatus refused(PlacementStatus placement) {
    RestoreStatus status = new RestoreStatus();
    status.placement = placement;
    return status;
  }

  /** wait for the checkpoint, by the operator: the Checkpoint named is still being taken. */
  public Restore waitForCheckpoint(Restore observed, String checkpoint) {
    RestoreStatus status = pending(observed);
    status.reason = "CheckpointInProgress";
    status.message = "waiting for Checkpoint '" + checkpoint + "' to complete";
    Conditions.set(status, Conditions.COMPLETE, false, status.reason, status.message,
        observed.getMetadata().getGeneration());
    return statusWriter.replace(observed, status);
  }

  /**
   * assign, by the operator: placed on {@code node}, whose agent restores {@code checkpoint} with the
   * grant sealed to it; {@code placement} says why that node, and which nodes' pre-flights failed.
   * An agent that sees its node's label but another node in the status does not take the work.
   */
  public Restore assign(Restore observed, String checkpoint, String node, SealedGrant grant, PlacementStatus placement) {
    if (observed.getStatus() != null && observed.getStatus().phase != null && !isPending(observed.getStatus())) {
      throw new IllegalStateException("restore " + observed.getMetadata().getName() + " is "
          + observed.getStatus().phase + ", not Pending: only Pending work is placed");
    }
    RestoreStatus status = pending(observed);
    status.checkpoint = checkpoint;
    status.grant = grant;
    status.placement = placement;
    return assign(observed, status, node);
  }

  /**
   * start, by the agent of {@code node}: Pending there → Restoring, a new attempt that {@code doing}
   * describes. Empty for a stale copy.
   */
  public Optional<Restore> start(Restore restore, String node, String doing) {
    return statusWriter.update(restore, r -> isPendingOn(r, node), r -> {
      r.getStatus().phase = RestorePhase.Restoring;
      started(r.getStatus(), doing, r.getSpec().backoffLimitOrDefault());
    });
  }

  /**
   * hand back, by the agent of {@code node} whose pre-flight found that it cannot run the checkpoint
   * (spec.placement.retryOtherNodes): Restoring → Pending without a node, the failure recorded, for
   * the operator to place it on the next candidate.
   */
  public Optional<Restore> handBack(Restore restore, String node, String reason, String message) {
    return statusWriter.update(restore, this::isAgentsPart, r -> {
      RestoreStatus s = r.getStatus();
      s.phase = RestorePhase.Pending;
      s.node = null;
      s.startTime = null;
      s.reason = reason;
      s.message = message;
      recordPreflightFailure(s, node, reason, message);
      Conditions.set(s, Conditions.COMPLETE, false, reason, message, r.getMetadata().getGeneration());
    }).map(handed -> {
      events.warning(handed, reason, message);
      return handed;
    });
  }

  /** fail the pre-flight, by the agent of {@code node}: this node cannot run the checkpoint, and no other is tried. */
  public Optional<Restore> failPreflight(Restore restore, String node, String reason, String message) {
    return fail(restore, this::isAgentsPart, reason, message, s -> {
      s.criuLogTail = null;
      recordPreflightFailure(s, node, reason, message);
    });
  }

  /**
   * complete, by the agent: CRIU restored the process tree, whose root is {@code pid} (null if CRIU
   * did not say), the process {@code root} (null if it had ended before the agent looked).
   */
  public Optional<Restore> restored(Restore restore, Integer pid, ProcessIdentity root, String message) {
    return statusWriter.update(restore, this::isAgentsPart, r -> {
      RestoreStatus s = r.getStatus();
      s.phase = RestorePhase.Completed;
      s.restoredPid = pid;
      s.restoredProcess = root;
      s.processState = "Running";
      completed(s, "Restored", message, r.getMetadata().getGeneration());
    }).map(done -> endedWell(done, "Restored", message));
  }

  /**
   * the tree exited, by the agent that watched the restored tree: a Completed restore's process state
   * turns Exited. {@code pid} names it in the Event (" (PID 42)", or empty).
   */
  public void processExited(Restore current, String pid) {
    statusWriter.update(current, r -> r.getStatus() != null && r.getStatus().phase == RestorePhase.Completed,
        r -> r.getStatus().processState = "Exited");
    events.normal(current, "ProcessExited", "the restored process tree" + pid + " ended");
  }

  /**
   * images pushed, by the agent: the checkpoint images of a pod restore are in the registry, and the
   * Restore, still Restoring, is the operator's from here on (it makes the pod).
   */
  public Optional<Restore> imagesPushed(Restore restore, List<CheckpointImageStatus> images, String message) {
    return statusWriter.update(restore, this::isAgentsPart, r -> {
      RestoreStatus s = r.getStatus();
      s.checkpointImages = images;
      s.reason = "ImagesPushed";
      s.message = message;
    }).map(pushed -> {
      events.normal(pushed, "ImagesPushed", message + ": " + String.join(", ", images.stream().map(i -> i.image).toList()));
      return pushed;
    });
  }

  /** pod created, by the operator, of a pod restore whose images were pushed: Restoring, it waits for {@code pod} to run. */
  public Optional<Restore> podCreated(Restore restore, String pod, String message) {
    return statusWriter.update(restore, RestoreLifecycle::isRestoring, r -> {
      RestoreStatus s = r.getStatus();
      s.restoredPod = pod;
      s.reason = "PodCreated";
      s.message = message;
    }).map(created -> {
      events.normal(created, "PodCreated", message);
      return created;
    });
  }

  /** complete the pod restore, by the operator: the restored pod runs. Restoring → Completed. */
  public Optional<Restore> completePod(Restore restore, String message) {
    return statusWriter.update(restore, RestoreLifecycle::isRestoring, r -> {
      r.getStatus().phase = RestorePhase.Completed;
      completed(r.getStatus(), "Restored", message, r.getMetadata().getGeneration());
    }).map(done -> endedWell(done, "Restored", message));
  }

  /** fail the pod restore, by the operator: its pod cannot be made or does not run. Restoring → Failed. */
  public Optional<Restore> failPod(Restore restore, String reason, String message) {
    return fail(restore, RestoreLifecycle::isRestoring, reason, message, s -> {});
  }

  private static boolean isRestoring(Restore r) {
    return r.getStatus() != null && r.getStatus().phase == RestorePhase.Restoring;
  }

  private static void recordPreflightFailure(RestoreStatus status, String node, String reason, String message) {
    if (status.placement == null) {
      status.placement = new PlacementStatus();
    }
    status.placement.preflightFailures.add(new PlacementStatus.PreflightFailure(node, reason, message));
  }
}
