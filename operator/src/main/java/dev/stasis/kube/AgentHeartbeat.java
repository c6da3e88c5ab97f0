package dev.stasis.kube;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileStatus;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.Optional;

/**
 * The agent's sign of life, in its NodeProfile's status (as a kubelet renews its node Lease). A
 * node whose agent has not been seen for {@link #TIMEOUT} gets no new restores, and the work
 * assigned to it is failed rather than left waiting forever for an agent that is gone.
 */
public final class AgentHeartbeat {
  public static final Duration INTERVAL = Duration.ofSeconds(20);
  /** As long as Kubernetes waits before evicting pods from an unreachable node. */
  public static final Duration TIMEOUT = Duration.ofMinutes(5);
  /** How often work waiting on an agent checks that the agent is still alive. */
  public static final Duration CHECK_INTERVAL = Duration.ofMinutes(1);

  private AgentHeartbeat() {}

  /** Renews the heartbeat of this node's profile: one merge patch of the status. */
  public static void renew(KubernetesClient client, String node, Instant now) {
    var patch = Map.of("status", Map.of("heartbeatTime", now.truncatedTo(ChronoUnit.SECONDS).toString()));
    client.resources(NodeProfile.class).withName(node).subresource("status")
        .patch(PatchContext.of(PatchType.JSON_MERGE), client.getKubernetesSerialization().asJson(patch));
  }

  /**
   * Why the node's agent cannot be counted on, or empty while it is alive. A profile without a
   * heartbeat (an agent older than heartbeats, or one that just published) counts as alive.
   */
  public static Optional<String> unavailable(String node, NodeProfile profile, Instant now) {
    if (profile == null) {
      return Optional.of("node " + node + " has no NodeProfile any more: its agent is gone");
    }
    NodeProfileStatus status = profile.getStatus();
    if (status == null || status.heartbeatTime == null) {
      return Optional.empty();
    }
    Instant seen;
    try {
      seen = Instant.parse(status.heartbeatTime);
    } catch (DateTimeParseException e) {
      return Optional.empty();
    }
    Duration silent = Duration.between(seen, now);
    if (silent.compareTo(TIMEOUT) <= 0) {
      return Optional.empty();
    }
    return Optional.of("the agent on node " + node + " was last seen " + silent.toMinutes() + " min ago ("
        + status.heartbeatTime + "; it renews its NodeProfile's status.heartbeatTime every " + INTERVAL.toSeconds()
        + " s)");
  }
}
