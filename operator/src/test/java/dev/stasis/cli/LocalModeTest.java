package dev.stasis.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.AgentConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@code stasis local} takes the agent's flags as {@code stasis agent} does, with local defaults. */
class LocalModeTest {
  static final Path STATE = Path.of("/tmp/stasis-state");

  @Test
  void localDefaults() {
    AgentConfig agent = LocalMode.agentConfig(new Flags(List.of()), STATE);
    assertThat(agent.nodeName()).isEqualTo(LocalMode.DEFAULT_NODE);
    assertThat(agent.workDir()).isEqualTo(STATE.resolve("work"));
    assertThat(agent.hostProcessNamespaces()).as("the README's walkthrough checkpoints this machine's processes there")
        .containsExactly("default");
    assertThat(agent.hostRoot()).isEqualTo(Path.of("/"));
    assertThat(agent.labels()).isEmpty();
  }

  @Test
  void theAgentsFlagsApply() {
    AgentConfig agent = LocalMode.agentConfig(new Flags(List.of("--node", "lab-1", "--node-labels", "zone=lab,gpu=none",
        "--host-root", "/host", "--profile-overrides", "/etc/overrides.json", "--max-concurrent", "4",
        "--allow-host-processes", "jobs", "--work-dir", "/var/lib/stasis")), STATE);
    assertThat(agent.nodeName()).isEqualTo("lab-1");
    assertThat(agent.labels()).isEqualTo(Map.of("zone", "lab", "gpu", "none"));
    assertThat(agent.hostRoot()).isEqualTo(Path.of("/host"));
    assertThat(agent.profileOverrides()).isEqualTo(Path.of("/etc/overrides.json"));
    assertThat(agent.maxConcurrent()).isEqualTo(4);
    assertThat(agent.hostProcessNamespaces()).isEqualTo(Set.of("jobs"));
    assertThat(agent.workDir()).isEqualTo(Path.of("/var/lib/stasis"));
  }

  /** `make run NODES=2`: a second agent, as node local-b with a work folder (and so a key) of its own. */
  @Test
  void twoNodesAreTwoAgentsWithTheirOwnWorkFolders() {
    List<AgentConfig> agents = LocalMode.agentConfigs(new Flags(List.of("--nodes", "2", "--max-concurrent", "3")), STATE);
    assertThat(agents).extracting(AgentConfig::nodeName).containsExactly("local", "local-b");
    assertThat(agents).extracting(AgentConfig::workDir).containsExactly(STATE.resolve("work"), STATE.resolve("work-local-b"));
    assertThat(agents.get(1).hostProcessNamespaces()).isEqualTo(agents.get(0).hostProcessNamespaces());
    assertThat(agents.get(1).maxConcurrent()).as("the agent flags apply to each").isEqualTo(3);
    assertThat(agents.get(1).kubelet().url().getHost()).isEqualTo("local-b");

    assertThat(LocalMode.agentConfigs(new Flags(List.of()), STATE)).extracting(AgentConfig::nodeName)
        .containsExactly("local");
    assertThat(LocalMode.agentConfigs(new Flags(List.of("--node", "lab", "--nodes", "3")), STATE))
        .extracting(AgentConfig::nodeName).containsExactly("lab", "lab-b", "lab-c");
    assertThatThrownBy(() -> LocalMode.agentConfigs(new Flags(List.of("--nodes", "0")), STATE))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--nodes wants a number of agents from 1 to 26");
  }

  /** The flag changed meaning (a namespace's own pods need no allowance now): the old name is refused, saying so. */
  @Test
  void theOldProcessTargetFlagIsRefusedWithWhatReplacedIt() {
    assertThatThrownBy(() -> LocalMode.agentConfig(new Flags(List.of("--allow-process-targets", "jobs")), STATE))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--allow-host-processes NS,...");
  }
}
