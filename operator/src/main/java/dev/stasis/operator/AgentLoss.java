package dev.stasis.operator;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.HeartbeatWatch;
import dev.stasis.kube.WorkLifecycle;
import io.fabric8.kubernetes.client.CustomResource;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Clock;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Work only the agent of one node can do (its checkpoint or restore has started there, or waits for
 * that agent) fails with {@value #REASON} once that agent stops sending heartbeats, instead of
 * waiting for it forever. Whether it stopped is judged by this operator's clock ({@link HeartbeatWatch}).
 */
final class AgentLoss {
  static final String REASON = "AgentUnavailable";

  private final ClusterCache cluster;
  private final Clock clock;
  private final HeartbeatWatch heartbeats = new HeartbeatWatch();

  AgentLoss(ClusterCache cluster, Clock clock) {
    this.cluster = cluster;
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

  /** Node → why its agent counts as gone, for each of {@code profiles} whose agent is: no new work goes there. */
  Map<String, String> goneAmong(List<NodeProfile> profiles) {
    Map<String, String> gone = new HashMap<>();
    for (NodeProfile profile : profiles) {
      String node = profile.getMetadata().getName();
      gone(node, profile).ifPresent(why -> gone.put(node, why));
    }
    return gone;
  }

  /**
   * Fails the resource when the agent of the node in its status is gone (the lifecycle's "fail as
   * the agent is lost"); otherwise looks again at the next heartbeat check.
   *
   * @param explain the message, given why the agent counts as gone
   */
  <S extends AgentWorkStatus, R extends CustomResource<?, S>> UpdateControl<R> failWhenGone(R resource,
      WorkLifecycle<S, R> lifecycle, Function<String, String> explain) {
    Optional<String> gone = gone(resource.getStatus().node);
    if (gone.isEmpty()) {
      return UpdateControl.<R>noUpdate().rescheduleAfter(AgentHeartbeat.CHECK_INTERVAL);
    }
    lifecycle.failAsAgentLost(resource, REASON, explain.apply(gone.get()));
    return UpdateControl.noUpdate();
  }
}
