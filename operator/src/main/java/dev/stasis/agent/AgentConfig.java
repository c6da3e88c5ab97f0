package dev.stasis.agent;

import dev.stasis.criu.Criu;
import java.nio.file.Path;
import java.util.Set;

/**
 * What one agent needs to know: which node it serves, where it works, which CRIU it runs, in
 * which namespaces process targets are allowed besides those labelled for it, and how it reaches
 * its node's kubelet for pod checkpoints.
 */
public record AgentConfig(
    String nodeName, Path workDir, Criu criu, Set<String> processTargetNamespaces, KubeletSettings kubelet) {
  public AgentConfig(String nodeName, Path workDir, Criu criu) {
    this(nodeName, workDir, criu, Set.of());
  }

  public AgentConfig(String nodeName, Path workDir, Criu criu, Set<String> processTargetNamespaces) {
    this(nodeName, workDir, criu, processTargetNamespaces, KubeletSettings.defaults(nodeName));
  }
}
