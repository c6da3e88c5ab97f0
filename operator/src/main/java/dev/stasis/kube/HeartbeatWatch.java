package dev.stasis.kube;

import dev.stasis.api.NodeProfile;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Whether each node's agent is alive, as the operator judges it: by when it last saw the agent's
 * heartbeat change, on its own clock. The heartbeatTime an agent writes is read by no clock but the
 * agent's, which may be minutes off: an agent whose clock lags would look gone while it works, and
 * one whose clock runs ahead would look alive long after it died.
 *
 * <p>A heartbeat first seen counts as just renewed, so an operator that starts gives every agent
 * {@link AgentHeartbeat#TIMEOUT} before it counts one as gone.
 */
public final class HeartbeatWatch {
  private record Seen(String heartbeat, Instant changedAt) {}

  /** One entry per node with a NodeProfile; a node whose profile is gone is forgotten. */
  private final Map<String, Seen> seen = new ConcurrentHashMap<>();

  /**
   * Why the agent of {@code node} cannot be counted on at {@code now}, or empty while it is alive.
   * A profile without a heartbeat (an agent older than heartbeats, or one that just published)
   * counts as alive.
   */
  public Optional<String> unavailable(String node, NodeProfile profile, Instant now) {
    if (profile == null) {
      seen.remove(node);
      return Optional.of("node " + node + " has no NodeProfile any more: its agent is gone");
    }
    Optional<Duration> silent = silence(node, profile, now);
    if (silent.isEmpty() || silent.get().compareTo(AgentHeartbeat.TIMEOUT) <= 0) {
      return Optional.empty();
    }
    return Optional.of("the agent on node " + node + " was last seen " + silent.get().toMinutes() + " min ago (its"
        + " NodeProfile's status.heartbeatTime has stayed " + profile.getStatus().heartbeatTime + " since; a running"
        + " agent renews it every " + AgentHeartbeat.INTERVAL.toSeconds() + " s)");
  }

  /**
   * How long the heartbeat of {@code node}'s agent has stayed the same at {@code now}, by this
   * watch's clock; empty for a profile without a heartbeat (or none at all).
   */
  public Optional<Duration> silence(String node, NodeProfile profile, Instant now) {
    String heartbeat = profile == null || profile.getStatus() == null ? null : profile.getStatus().heartbeatTime;
    if (heartbeat == null) {
      return Optional.empty();
    }
    Seen last = seen.compute(node, (n, before) -> before != null && before.heartbeat().equals(heartbeat)
        ? before : new Seen(heartbeat, now));
    return Optional.of(Duration.between(last.changedAt(), now));
  }
}
