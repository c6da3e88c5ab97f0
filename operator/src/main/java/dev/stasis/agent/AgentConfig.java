package dev.stasis.agent;

import dev.stasis.criu.Criu;
import java.nio.file.Path;

/** What one agent needs to know: which node it serves, where it works, which CRIU it runs. */
public record AgentConfig(String nodeName, Path workDir, Criu criu) {}
