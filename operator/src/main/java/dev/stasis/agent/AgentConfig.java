package dev.stasis.agent;

import dev.stasis.criu.Criu;
import java.nio.file.Path;
import java.util.Set;

/**
 * What one agent needs to know: which node it serves, where it works, which CRIU it runs, and in
 * which namespaces process targets are allowed besides those labelled for it.
 */
public record AgentConfig(String nodeName, Path workDir, Criu criu, Set<String> processTargetNamespaces) {
  public AgentConfig(String nodeName, Path workDir, Criu criu) {
    this(nodeName, workDir, criu, Set.of());
  }
}
