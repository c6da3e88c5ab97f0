package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.agent.checkpoint.NodeCheckpointWorker;
import dev.stasis.agent.fencing.FailoverFencing;
import dev.stasis.agent.profile.NodeProfilePublisher;
import dev.stasis.agent.restore.NodeRestoreWorker;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.Restore;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.metrics.MetricsServer;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.CheckpointReconciler;
import dev.stasis.operator.CheckpointScheduleReconciler;
import dev.stasis.operator.CheckpointStorageReconciler;
import dev.stasis.operator.MigrationReconciler;
import dev.stasis.operator.RestoreReconciler;
import dev.stasis.operator.retention.ChunkSweepLock;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.RegisteredController;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import io.javaoperatorsdk.operator.monitoring.micrometer.MicrometerMetrics;
import io.javaoperatorsdk.operator.processing.Controller;
import java.time.Duration;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;

/** Wires the two roles onto a JOSDK {@link Operator}; {@code stasis local} puts both on one. */
public final class Roles {
  /** How long a stopping process lets running reconciliations end (an agent's: writing Failed). */
  static final Duration TERMINATION_GRACE = Duration.ofSeconds(30);

  private Roles() {}

  public static Operator newOperator(KubernetesClient client) {
    return newOperator(client, Optional.empty());
  }

  /**
   * JOSDK settings every role uses. Status writes go through our optimistic-lock StatusWriter.
   * With leader election only the Lease holder reconciles; the others keep their caches and wait.
   */
  public static Operator newOperator(KubernetesClient client, Optional<LeaderElectionConfiguration> leaderElection) {
    return new Operator(o -> {
      o.withKubernetesClient(client)
          .withUseSSAToPatchPrimaryResource(false)
          .withCloseClientOnStop(false)
          .withStopOnInformerErrorDuringStartup(true)
          .withReconciliationTerminationTimeout(TERMINATION_GRACE)
          // Per controller, not per resource: one series per Checkpoint would never end.
          .withMetrics(MicrometerMetrics.withoutPerResourceMetrics(StasisMetrics.registry()));
      leaderElection.ifPresent(o::withLeaderElectionConfiguration);
    });
  }

  /** @param retries the backoff of Checkpoints and Restores refused for a reason that may pass (storage down) */
  public static void registerOperator(Operator operator, KubernetesClient client, String instance,
      RetryPolicy retries) {
    var events = new EventRecorder(client, "operator", instance);
    var cluster = ClusterCache.watching(client);
    var chunkLock = new ChunkSweepLock(); // one per operator: its grants and its sweeps exclude each other
    operator.register(new CheckpointReconciler(client, cluster, events, retries, chunkLock));
    operator.register(new RestoreReconciler(client, cluster, events, retries));
    operator.register(new CheckpointStorageReconciler(client, events, chunkLock));
    operator.register(new CheckpointScheduleReconciler(client, events));
    operator.register(new MigrationReconciler(client, cluster, events));
    StasisMetrics.migrationsAndFailoversFromZero();
  }

  /**
   * What an agent runs besides its workers: its NodeProfile and heartbeat, and the fencing of trees
   * that were failed over while its node was lost. Started once the agent's informers may start.
   */
  public record AgentLoops(NodeProfilePublisher profile, FailoverFencing fencing) implements AutoCloseable {
    public void start() {
      profile.start();
      fencing.start();
    }

    @Override
    public void close() {
      fencing.close();
      profile.close();
    }
  }

  /** The agent sees only the work labelled for its node (Velero's node-agent pattern). */
  public static AgentLoops registerAgent(
      Operator operator, KubernetesClient client, AgentConfig config, AgentShutdown shutdown) {
    var events = new EventRecorder(client, "agent", config.nodeName());
    var work = new NodeWork(client, config, events, shutdown);
    String selector = Labels.nodeSelector(config.nodeName());
    var checkpoints = operator.register(new NodeCheckpointWorker(work),
        o -> o.withName("node-checkpoint-" + config.nodeName()).withLabelSelector(selector));
    var restores = operator.register(new NodeRestoreWorker(work),
        o -> o.withName("node-restore-" + config.nodeName()).withLabelSelector(selector));
    StasisMetrics.queueDepth(config.nodeName(), "checkpoint", () -> count(checkpoints,
        (Checkpoint c) -> c.getStatus() != null && c.getStatus().phase != null && !c.getStatus().phase.isTerminal()));
    StasisMetrics.queueDepth(config.nodeName(), "restore", () -> count(restores,
        (Restore r) -> r.getStatus() != null && !r.getStatus().phaseOrPending().isTerminal()));
    return new AgentLoops(new NodeProfilePublisher(client, config), new FailoverFencing(client, config.nodeName(), events));
  }

  /** Ready once its informers run and are healthy, and until it starts shutting down. */
  public static MetricsServer.Readiness readiness(Operator operator, BooleanSupplier stopping) {
    return () -> {
      if (stopping.getAsBoolean()) {
        return Optional.of("shutting down");
      }
      var runtime = operator.getRuntimeInfo();
      if (!runtime.isStarted()) {
        return Optional.of("starting");
      }
      return runtime.allEventSourcesAreHealthy()
          ? Optional.empty()
          : Optional.of("informers not healthy: " + runtime.unhealthyEventSources().keySet());
    };
  }

  /** Counted in the controller's informer cache: no API call per scrape. */
  private static <P extends HasMetadata> long count(RegisteredController<P> registered, Predicate<P> matching) {
    return ((Controller<P>) registered).getEventSourceManager().getControllerEventSource().list(matching).count();
  }
}
