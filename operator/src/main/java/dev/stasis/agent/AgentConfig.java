package dev.stasis.agent;

import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.agent.work.NodeWorkQueue;
import dev.stasis.criu.Criu;
import dev.stasis.kube.RetryPolicy;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

/**
 * What one agent needs to know: which node it serves, where it works, which CRIU it runs, which
 * namespaces a cluster admin allowed to checkpoint and restore host processes (processes in no pod,
 * see {@link ProcessTargetPolicy}), and how it reaches its node's kubelet for pod checkpoints.
 *
 * @param hostRoot where the node's root filesystem is seen from the agent: "/" when the agent runs
 *     on the host, the host-path mount (e.g. /host) in a DaemonSet; the pre-flight looks up the
 *     paths a checkpoint needs under it
 * @param labels labels for this node's NodeProfile, over those of its Node (spec.placement.nodeSelector)
 * @param profileOverrides a test aid: a JSON merge patch applied to what the probe observed, so one
 *     machine can pose as nodes that differ (fewer CPU flags, an older CRIU); the published
 *     NodeProfile says so in an annotation. Null in production.
 * @param maxConcurrent checkpoints and restores this agent runs at once; the rest wait in line
 * @param retries how long to wait before trying transiently failed work again (spec.backoffLimit)
 * @param runtime where the node's container runtime keeps its configuration and images, and what
 *     the node's administrator states about its restores
 * @param travellingLimits how much of a job's tmpfs files one checkpoint may carry
 */
public record AgentConfig(String nodeName, Path workDir, Criu criu, Set<String> hostProcessNamespaces,
    KubeletSettings kubelet, Path hostRoot, Map<String, String> labels, Path profileOverrides, int maxConcurrent,
    RetryPolicy retries, RuntimeSettings runtime, TravellingFileLimits travellingLimits) {

  public AgentConfig {
    labels = Map.copyOf(labels);
    if (maxConcurrent < 1) {
      throw new IllegalArgumentException("--max-concurrent must be at least 1, got " + maxConcurrent);
    }
  }

  public AgentConfig(String nodeName, Path workDir, Criu criu, Set<String> hostProcessNamespaces,
      KubeletSettings kubelet, Path hostRoot, Map<String, String> labels, Path profileOverrides) {
    this(nodeName, workDir, criu, hostProcessNamespaces, kubelet, hostRoot, labels, profileOverrides,
        NodeWorkQueue.DEFAULT_SLOTS, RetryPolicy.DEFAULT, RuntimeSettings.defaults(), TravellingFileLimits.DEFAULT);
  }

  /** The same agent with other work limits: how much runs at once, how long a retry waits. */
  public AgentConfig withWorkLimits(int maxConcurrent, RetryPolicy retries) {
    return new AgentConfig(nodeName, workDir, criu, hostProcessNamespaces, kubelet, hostRoot, labels,
        profileOverrides, maxConcurrent, retries, runtime, travellingLimits);
  }

  /** A path of the node (absolute, as the node sees it) where the agent reaches it: under its host root. */
  public Path onHost(Path nodePath) {
    return onHost(hostRoot, nodePath);
  }

  public static Path onHost(Path hostRoot, Path nodePath) {
    String relative = nodePath.toString().replaceFirst("^/+", "");
    return relative.isEmpty() ? hostRoot : hostRoot.resolve(relative);
  }

  /** The same agent with other runtime settings. */
  public AgentConfig withRuntime(RuntimeSettings settings) {
    return new AgentConfig(nodeName, workDir, criu, hostProcessNamespaces, kubelet, hostRoot, labels,
        profileOverrides, maxConcurrent, retries, settings, travellingLimits);
  }

  /** The same agent carrying at most {@code limits} of a job's tmpfs files per checkpoint. */
  public AgentConfig withTravellingLimits(TravellingFileLimits limits) {
    return new AgentConfig(nodeName, workDir, criu, hostProcessNamespaces, kubelet, hostRoot, labels,
        profileOverrides, maxConcurrent, retries, runtime, limits);
  }

  public AgentConfig(String nodeName, Path workDir, Criu criu) {
    this(nodeName, workDir, criu, Set.of());
  }

  public AgentConfig(String nodeName, Path workDir, Criu criu, Set<String> hostProcessNamespaces) {
    this(nodeName, workDir, criu, hostProcessNamespaces, KubeletSettings.defaults(nodeName));
  }

  public AgentConfig(String nodeName, Path workDir, Criu criu, Set<String> hostProcessNamespaces,
      KubeletSettings kubelet) {
    this(nodeName, workDir, criu, hostProcessNamespaces, kubelet, Path.of("/"), Map.of(), null);
  }
}
