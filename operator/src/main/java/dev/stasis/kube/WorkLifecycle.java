package dev.stasis.kube;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.Conditions;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.SealedGrant;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The transitions Checkpoints and Restores share: work the operator assigns to the agent of a node,
 * which takes it in attempts. {@link CheckpointLifecycle} and {@link RestoreLifecycle} add their
 * own; docs/lifecycles.md has the table of all of them. Each transition is a method that owns its
 * precondition: the agent's and the operator's pod transitions check it on the newest copy
 * ({@link StatusWriter#update}), the operator's decisions on the copy they were made on, written
 * only if nobody wrote since ({@link StatusWriter#replace}). Each records its Event; one that ends
 * the work also tells {@code finished} (the metrics of the role that ended it).
 *
 * <p>Who may move what: the operator moves work until it is assigned (Pending on a node), and again
 * when the node's agent is gone; the agent of {@code status.node} moves it from Pending on its node
 * through its attempts; the operator finishes a pod restore once the agent pushed its images.
 */
public abstract class WorkLifecycle<S extends AgentWorkStatus, R extends CustomResource<?, S>> {
  protected final KubernetesClient client;
  protected final StatusWriter statusWriter;
  protected final EventRecorder events;
  private final Consumer<S> finished;

  protected WorkLifecycle(KubernetesClient client, EventRecorder events, Consumer<S> finished) {
    this.client = client;
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.finished = finished;
  }

  /** The kind's phase of a status, or null before it has one. */
  protected abstract Object phase(S status);

  /** Whether the phase is Pending (exactly: a status without a phase is not the agent's yet). */
  protected abstract boolean isPending(S status);

  /** Whether the status is in the part of the work the agent of its node owns: its attempt runs. */
  protected abstract boolean isAgentsPart(S status);

  protected abstract boolean isTerminal(S status);

  /** Back to Pending, as before the attempt started. */
  protected abstract void toPending(S status);

  /** Whether the work waits on {@code node} for that node's agent: the agent's precondition to take it. */
  public boolean isPendingOn(R resource, String node) {
    S status = resource.getStatus();
    return status != null && isPending(status) && node.equals(status.node);
  }

  /** Whether the work is in its attempt on a node (the agent's to finish). */
  public boolean isAgentsPart(R resource) {
    return resource.getStatus() != null && isAgentsPart(resource.getStatus());
  }

  /** queue, by the agent of {@code node}: pending there, it waits for a slot at {@code position} (1 is next). */
  public Optional<R> queue(R resource, String node, int position, String message) {
    return statusWriter.update(resource, r -> isPendingOn(r, node), r -> r.getStatus().waitInQueue(position, message));
  }

  /**
   * progress, by the agent of {@code node}: how far its attempt has come, while the attempt runs
   * there; nothing once the work moved on (the write's precondition is checked on the newest copy).
   */
  public Optional<R> progress(R resource, String node, ProgressStatus progress) {
    return statusWriter.update(resource, r -> isAgentsPart(r) && node.equals(r.getStatus().node),
        r -> r.getStatus().progress = progress);
  }

  /**
   * retry later, by the agent: its attempt failed transiently and {@code spec.backoffLimit} allows
   * another. Back to Pending on the same node until {@code retryAt}, condition Retrying True.
   */
  public Optional<R> retryLater(R resource, String reason, String message, String retryAt) {
    return statusWriter.update(resource, this::isAgentsPart, r -> {
      toPending(r.getStatus());
      r.getStatus().waitForRetry(reason, message, retryAt, r.getMetadata().getGeneration());
    }).map(waiting -> {
      events.warning(waiting, "Retrying", message);
      return waiting;
    });
  }

  /** fail, by the agent: its attempt failed for good. {@code logTail}: CRIU's, when CRIU failed. */
  public Optional<R> fail(R resource, String reason, String message, String logTail) {
    return fail(resource, this::isAgentsPart, reason, message, s -> s.criuLogTail = logTail);
  }

  /** Fails the work if {@code precondition} holds, recording more with {@code record}. */
  protected Optional<R> fail(R resource, Predicate<R> precondition, String reason, String message,
      Consumer<S> record) {
    return statusWriter.update(resource, precondition, r -> {
      r.getStatus().fail(reason, message, r.getMetadata().getGeneration());
      record.accept(r.getStatus());
    }).map(this::endedBadly);
  }

  /** The Event and the metrics of work that failed: its status says why. */
  protected R endedBadly(R failed) {
    events.warning(failed, failed.getStatus().reason, failed.getStatus().message);
    finished.accept(failed.getStatus());
    return failed;
  }

  /**
   * retry later, by the operator: a refusal that may pass by itself (a storage that is down) before
   * the work was assigned. {@code waiting}, the kind's fresh Pending status filled in by the caller,
   * counts this try as attempt {@code attempt} and waits until {@code retryAt}.
   */
  public R retryRefusalLater(R observed, S waiting, int attempt, String reason, String message, String retryAt) {
    Long generation = observed.getMetadata().getGeneration();
    waiting.attempts = attempt;
    waiting.waitForRetry(reason, message, retryAt, generation);
    Conditions.set(waiting, Conditions.COMPLETE, false, reason, message, generation);
    R written = statusWriter.replace(observed, waiting);
    events.warning(observed, "Retrying", message);
    return written;
  }

  /**
   * refuse, by the operator: the work cannot go ahead as written, before it was assigned. {@code
   * failed} is the kind's fresh status, filled in by the caller; earlier attempts (refusals it
   * retried) are counted in it.
   */
  public R refuse(R observed, S failed, String reason, String message) {
    Long generation = observed.getMetadata().getGeneration();
    int before = attemptsBefore(observed);
    if (before > 0) {
      failed.attempts = before + 1;
      failed.conditions.addAll(observed.getStatus().conditions);
    }
    failed.fail(reason, message, generation);
    R written = statusWriter.replace(observed, failed);
    events.warning(observed, reason, failed.message);
    finished.accept(failed);
    return written;
  }

  /**
   * fail as the agent is lost, by the operator: the agent of the node in the status stopped sending
   * heartbeats while the work waited for it or ran there; unless it ended, or its phase or node
   * changed since.
   */
  public Optional<R> failAsAgentLost(R resource, String reason, String message) {
    Object phase = phase(resource.getStatus());
    String node = resource.getStatus().node;
    return fail(resource, r -> r.getStatus() != null && !isTerminal(r.getStatus())
        && Objects.equals(phase(r.getStatus()), phase) && node.equals(r.getStatus().node), reason, message, s -> {});
  }

  /**
   * observe a new generation, by the operator, of work that ended: a field of the spec that may
   * change (such as retainArchive) changed; the status says it was seen, so that GitOps tools do
   * not wait for a status that would otherwise never come. Nothing else moves.
   */
  public Optional<R> observeGeneration(R resource) {
    return statusWriter.update(resource, r -> r.getStatus() != null && isTerminal(r.getStatus())
        && !Objects.equals(r.getStatus().observedGeneration, r.getMetadata().getGeneration()), r -> {});
  }

  /** reseal, by the operator: the grant sealed again to the key the node's agent now publishes; not once ended. */
  public Optional<R> reseal(R resource, SealedGrant grant) {
    return statusWriter.update(resource, r -> r.getStatus() != null && !isTerminal(r.getStatus()),
        r -> r.getStatus().grant = grant);
  }

  /**
   * assign, by the operator: hands the work to the agent of {@code node}. {@code assigned} (the
   * kind's fresh Pending status, with what the caller decided besides the node) is written first,
   * then the label the agent watches; each write conditional on the version the decision was made
   * on, so that an agent that took the work meanwhile keeps it and no second agent ever sees it.
   * Attempts so far are carried over (the agent counts on from them), and so are the conditions
   * (Retrying turns False when the work ends).
   */
  protected R assign(R observed, S assigned, String node) {
    Long generation = observed.getMetadata().getGeneration();
    int before = attemptsBefore(observed);
    if (before > 0) {
      assigned.attempts = before;
      assigned.conditions.addAll(observed.getStatus().conditions);
    }
    assigned.node = node;
    assigned.message = "waiting for the agent on node " + node;
    Conditions.set(assigned, Conditions.COMPLETE, false, "Pending", assigned.message, generation);
    return Labels.assign(client, statusWriter.replace(observed, assigned), node);
  }

  /** The work ended in its kind's Completed phase: reason, message and conditions say so. */
  protected static void completed(AgentWorkStatus status, String reason, String message, Long generation) {
    status.completionTime = Conditions.now();
    if (status.progress != null) {
      status.progress = status.progress.finished();
    }
    status.reason = reason;
    status.message = message;
    Conditions.set(status, Conditions.COMPLETE, true, reason, message, generation);
    status.stopRetrying(reason, message, generation);
  }

  /**
   * Another attempt begins on the node: counted, started now, saying what it {@code does} and, from
   * the second on, which attempt of how many ("..., attempt 2/4").
   */
  protected static void started(AgentWorkStatus status, String does, int backoffLimit) {
    status.startAttempt();
    status.startTime = Conditions.now();
    int attempt = status.attempts();
    status.message = does + (attempt <= 1 ? "" : ", attempt " + attempt + "/" + (backoffLimit + 1));
  }

  /** The Event and the metrics of work that ended well. */
  protected R endedWell(R done, String reason, String message) {
    events.normal(done, reason, message);
    finished.accept(done.getStatus());
    return done;
  }

  private int attemptsBefore(R resource) {
    return resource.getStatus() == null ? 0 : resource.getStatus().attempts();
  }
}
