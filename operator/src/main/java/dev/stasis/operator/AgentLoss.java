package dev.stasis.operator;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.HeartbeatWatch;
import dev.stasis.kube.StatusWriter;
import io.fabric8.kubernetes.client.CustomResource;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Clock;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Work only the agent of one node can do (its checkpoint or restore has started there, or waits for
 * that agent) fails with {@value #REASON} once that agent stops sending heartbeats, instead of
 * waiting for it forever. Whether it stopped is judged by this operator's clock ({@link HeartbeatWatch}).
 */
final class AgentLoss {
  static final String REASON = "AgentUnavailable";

  private final ClusterCache cluster;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Clock clock;
  private final HeartbeatWatch heartbeats = new HeartbeatWatch();

  AgentLoss(ClusterCache cluster, StatusWriter statusWriter, EventRecorder events, Clock clock) {
    this.cluster = cluster;
    this.statusWriter = statusWriter;
    this.events = events;
    this.clock = clock;
  }

  /** Why the agent of {@code node} counts as gone; empty while it sends heartbeats. */
  Optional<String> gone(String node) {
    return node == null ? Optional.empty() : gone(node, cluster.nodeProfile(node));
  }

  /** Why the agent of {@code node}, whose profile is {@code profile}, counts as gone. */
  Optional<String> gone(String node, NodeProfile profile) {
    return heartbeats.unavailable(node, profile, clock.instant());
  }

  /**
   * Fails the resource when the agent of the node in its status is gone, unless its phase or node
   * changed meanwhile; otherwise looks again at the next heartbeat check.
   *
   * @param phaseOf the kind's phase of a status
   * @param explain the message, given why the agent counts as gone
   * @param failed what else a failure records (metrics)
   */
  <S extends AgentWorkStatus, R extends CustomResource<?, S>> UpdateControl<R> failWhenGone(R resource,
      Function<S, ?> phaseOf, Function<String, String> explain, Consumer<S> failed) {
    String node = resource.getStatus().node;
    Optional<String> gone = gone(node);
    if (gone.isEmpty()) {
      return UpdateControl.<R>noUpdate().rescheduleAfter(AgentHeartbeat.CHECK_INTERVAL);
    }
    Object phase = phaseOf.apply(resource.getStatus());
    String message = explain.apply(gone.get());
    statusWriter.update(resource, r -> r.getStatus() != null && Objects.equals(phaseOf.apply(r.getStatus()), phase)
        && node.equals(r.getStatus().node), r -> r.getStatus().fail(REASON, message, r.getMetadata().getGeneration()))
        .ifPresent(written -> {
          events.warning(written, REASON, message);
          failed.accept(written.getStatus());
        });
    return UpdateControl.noUpdate();
  }
}
