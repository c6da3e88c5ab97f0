package dev.stasis.agent.work;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.AgentWorkStatus;
import dev.stasis.kube.CheckpointLifecycle;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.RestoreLifecycle;
import dev.stasis.kube.WorkLifecycle;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the node workers of one agent share, so that each is wired once: the client, the agent's
 * settings, storages, lifecycles, events, shutdown, and the node's work queue and retry policy.
 * It also holds the steps all node work goes through the same way: routed to the job of its kind
 * ({@link #route}), wait for a due retry, wait in line for a slot (telling the status its place),
 * and after a failure either go back to Pending for another attempt or fail for good.
 */
public final class NodeWork {
  private static final Logger log = LoggerFactory.getLogger(NodeWork.class);
  /** How soon to look again at pending work whose previous attempt still winds up in its slot. */
  private static final Duration WINDING_UP = Duration.ofSeconds(1);
  /** How soon work that could not start for want of the API server is queued again. */
  private static final Duration START_AGAIN = Duration.ofSeconds(5);

  final KubernetesClient client;
  final AgentConfig config;
  final EventRecorder events;
  final AgentShutdown shutdown;
  final StorageAccess storages;
  public final NodeWorkQueue queue;
  final RetryPolicy retries;
  public final ProcessTargetPolicy processTargets;
  public final CheckpointLifecycle checkpoints;
  public final RestoreLifecycle restores;

  public NodeWork(KubernetesClient client, AgentConfig config, EventRecorder events, AgentShutdown shutdown) {
    this.client = client;
    this.config = config;
    this.events = events;
    this.shutdown = shutdown;
    this.storages = new StorageAccess(client, nodeKey(config), config.nodeName());
    this.queue = new NodeWorkQueue(config.nodeName(), config.maxConcurrent());
    this.retries = config.retries();
    this.processTargets = new ProcessTargetPolicy(client, config.nodeName(), config.hostProcessNamespaces());
    this.checkpoints = new CheckpointLifecycle(client, events, StasisMetrics::checkpointFinished);
    this.restores = new RestoreLifecycle(client, events, StasisMetrics::restoreFinished);
    shutdown.awaitOnStop(queue);
    StasisMetrics.nodeWork(config.nodeName(), queue::running, queue::waiting, queue::mostRunning);
  }

  String node() {
    return config.nodeName();
  }

  /** The agent's key, which its NodeProfile publishes and the operator seals its work's grants to. */
  public static NodeKey nodeKey(AgentConfig config) {
    try {
      return NodeKey.inWorkDir(config.workDir());
    } catch (IOException e) {
      throw new UncheckedIOException("the agent's key in its work folder " + config.workDir() + ": " + e.getMessage(), e);
    }
  }

  /**
   * What the agent's workers do with a resource assigned to this node: work pending here is queued
   * for a slot, once a retry's backoff has passed and its grant is ready, unless its job refuses it
   * before it waits; work in its attempt here that no slot of this agent holds was left by an agent
   * that died, and its job resolves it. {@code jobOf} picks the job of the resource's kind.
   */
  public <S extends AgentWorkStatus, R extends CustomResource<?, S>> UpdateControl<R> route(R resource,
      WorkLifecycle<S, R> lifecycle, Function<R, NodeJob<R>> jobOf) {
    S status = resource.getStatus();
    if (status == null || !node().equals(status.node)) {
      return UpdateControl.noUpdate(); // not handed over to this node yet
    }
    if (lifecycle.isPendingOn(resource, node()) && shutdown.acceptsWork()) {
      var untilRetry = RetryPolicy.untilRetry(status, Instant.now());
      if (untilRetry.isPresent()) {
        return UpdateControl.<R>noUpdate().rescheduleAfter(untilRetry.get());
      }
      if (!storages.grantReady(resource)) {
        return UpdateControl.<R>noUpdate().rescheduleAfter(NodeJob.GRANT_WAIT);
      }
      NodeJob<R> job = jobOf.apply(resource);
      if (job.refusedBeforeQueueing(resource)) {
        return UpdateControl.noUpdate();
      }
      return enqueue(resource, lifecycle, job::take).map(UpdateControl.<R>noUpdate()::rescheduleAfter)
          .orElse(UpdateControl.noUpdate());
    }
    if (lifecycle.isAgentsPart(resource) && !queue.holds(resource.getMetadata().getUid())) {
      R fresh = client.resource(resource).get();
      if (fresh == null || !lifecycle.isAgentsPart(fresh) || queue.holds(fresh.getMetadata().getUid())) {
        return UpdateControl.noUpdate(); // the cache lagged behind this agent's own final write
      }
      return jobOf.apply(fresh).resolveAbandoned(fresh).map(UpdateControl.<R>noUpdate()::rescheduleAfter)
          .orElse(UpdateControl.noUpdate());
    }
    return UpdateControl.noUpdate();
  }

  /**
   * Queues {@code take} for a slot of this node. While the work waits its status shows its place in
   * line; when its turn comes, it runs on a fresh copy, if that is still pending here. Returns when
   * to look again if it cannot be queued yet: its previous attempt (which put it back to Pending)
   * has not left its slot.
   */
  <S extends AgentWorkStatus, R extends CustomResource<?, S>> Optional<Duration> enqueue(R resource,
      WorkLifecycle<S, R> lifecycle, Consumer<R> take) {
    // The copy last written, so that the next write of a place in line need not conflict first.
    AtomicReference<R> latest = new AtomicReference<>(resource);
    String id = resource.getMetadata().getUid();
    boolean queued = queue.submit(id, new NodeWorkQueue.Job() {
      @Override
      public void run() {
        if (!shutdown.acceptsWork()) {
          return; // stays Pending for the next agent on this node
        }
        try {
          R fresh = client.resource(resource).get();
          if (fresh != null && lifecycle.isPendingOn(fresh, node())
              && RetryPolicy.untilRetry(fresh.getStatus(), Instant.now()).isEmpty()) {
            take.accept(fresh);
          }
        } catch (KubernetesClientException e) {
          // Reading it or writing Running failed, so nothing ran: no reconcile would bring it back.
          log.warn("could not start {} {}/{}, trying again shortly: {}", resource.getKind(),
              resource.getMetadata().getNamespace(), resource.getMetadata().getName(), e.getMessage());
          queue.submitLater(id, this, START_AGAIN);
        }
      }

      @Override
      public void waiting(int position, int running) {
        String message = ordinal(position) + " in line on node " + node() + "; " + running + " running";
        lifecycle.queue(latest.get(), node(), position, message).ifPresent(written -> {
          latest.set(written);
          StasisMetrics.placeInLineWritten(node());
        });
      }
    });
    return !queued && queue.isRunning(id) ? Optional.of(WINDING_UP) : Optional.empty();
  }

  /**
   * Starts reporting how far the attempt of {@code resource} on this node comes, into its status
   * (through {@code lifecycle}) and the node's metrics; the job closes it once its bytes are moved.
   * Once the job's own writes moved the work on, the lifecycle's precondition refuses any further
   * progress, so it never follows them.
   */
  public <S extends AgentWorkStatus, R extends CustomResource<?, S>> WorkProgress progress(R resource,
      WorkLifecycle<S, R> lifecycle) {
    // The copy last written, so that the next write need not conflict first.
    AtomicReference<R> latest = new AtomicReference<>(resource);
    String kind = resource.getKind().toLowerCase(Locale.ROOT);
    WorkProgress progress = new WorkProgress(
        p -> lifecycle.progress(latest.get(), node(), p).map(written -> {
          latest.set(written);
          return true;
        }).orElse(false),
        (step, bytes) -> StasisMetrics.workBytesMoved(node(), kind, step, bytes), Clock.systemUTC());
    return progress.start(StasisMetrics.inFlight(node(), kind, progress));
  }

  /**
   * After a failed attempt: when the failure is transient and spec.backoffLimit allows another
   * attempt, the lifecycle's "retry later" puts the work back to Pending until the backoff has
   * passed, with a Warning Event "attempt 1/4 failed (...): ...; retrying in 10s", and returns true.
   * Otherwise false: the caller fails the work for good, with {@link WorkFailure#afterAttempts}.
   */
  public <S extends AgentWorkStatus, R extends CustomResource<?, S>> boolean retryLater(WorkLifecycle<S, R> lifecycle,
      R resource, WorkFailure failure, int backoffLimit) {
    int attempt = resource.getStatus() == null ? 1 : Math.max(1, resource.getStatus().attempts());
    if (!retries.retries(failure.reason(), attempt, backoffLimit)) {
      return false;
    }
    Duration delay = retries.delayAfter(attempt);
    lifecycle.retryLater(resource, failure.reason(),
        RetryPolicy.retryMessage(attempt, backoffLimit, failure.reason(), failure.getMessage(), delay),
        Instant.now().plus(delay).toString());
    return true;
  }

  /**
   * Deletes what an abandoned attempt of this checkpoint stored (objects, and unfinished S3
   * multipart uploads under its prefix), so that neither a retry nor the final failure leaves a
   * partial archive behind. Failing to, it logs why: the storage's garbage collector finds it later.
   */
  public void discardStored(Checkpoint checkpoint) {
    var meta = checkpoint.getMetadata();
    String prefix = RecordedManifest.layout(checkpoint).prefix();
    try (ObjectStore store = storages.open(storages.find(checkpoint.getStatus().storage), storages.grant(checkpoint))) {
      store.deleteAll(prefix);
    } catch (WorkFailure | IOException e) {
      log.warn("could not delete what the abandoned checkpoint {}/{} stored under {}: {}", meta.getNamespace(),
          meta.getName(), prefix, e.getMessage());
    }
  }

  /** 1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st. */
  static String ordinal(int n) {
    int lastTwo = n % 100;
    String suffix = lastTwo >= 11 && lastTwo <= 13 ? "th" : switch (n % 10) {
      case 1 -> "st";
      case 2 -> "nd";
      case 3 -> "rd";
      default -> "th";
    };
    return n + suffix;
  }
}
