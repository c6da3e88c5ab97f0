package dev.stasis.kube;

import dev.stasis.api.NodeProfile;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;

/**
 * The agent's sign of life, in its NodeProfile's status (as a kubelet renews its node Lease). A
 * node whose agent has not been seen for {@link #TIMEOUT} gets no new restores, and the work
 * assigned to it is failed rather than left waiting forever for an agent that is gone. Whether it
 * has been seen is the operator's to judge, by its own clock ({@link HeartbeatWatch}).
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
}
