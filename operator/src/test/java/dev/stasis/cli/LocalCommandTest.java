package dev.stasis.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.RuntimeSettings;
import dev.stasis.agent.TravellingFileLimits;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code stasis local} takes the agent's flags as {@code stasis agent} does, with local defaults. */
class LocalCommandTest {
  static final Path STATE = Path.of("/tmp/stasis-state");

  @Test
  void localDefaults() {
    AgentConfig agent = local().agentConfig(STATE);
    assertThat(agent.nodeName()).isEqualTo(LocalCommand.DEFAULT_NODE);
    assertThat(agent.workDir()).isEqualTo(STATE.resolve("work"));
    assertThat(agent.hostProcessNamespaces()).as("the README's walkthrough checkpoints this machine's processes there")
        .containsExactly("default");
    assertThat(agent.hostRoot()).isEqualTo(Path.of("/"));
    assertThat(agent.labels()).isEmpty();
    assertThat(agent.maxConcurrent()).isEqualTo(2);
    assertThat(agent.runtime()).isEqualTo(RuntimeSettings.defaults());
    assertThat(agent.travellingLimits()).isEqualTo(TravellingFileLimits.DEFAULT);
  }

  @Test
  void theAgentsFlagsApply() throws Exception {
    Path overrides = java.nio.file.Files.createTempFile("overrides", ".json");
    try {
      AgentConfig agent = local("--node", "lab-1", "--node-labels", "zone=lab,gpu=none", "--host-root", "/tmp",
          "--profile-overrides", overrides.toString(), "--max-concurrent", "4", "--allow-host-processes", "jobs",
          "--work-dir", "/var/lib/stasis", "--retry-backoff=1m", "--containerd-config", "/etc/k3s/containerd.toml",
          "--crio-socket", "/run/crio.sock", "--runtime-restore", "enabled", "--container-storage-dir", "/srv/images",
          "--travelling-files-max-count", "0", "--travelling-files-max-bytes", "8589934592").agentConfig(STATE);
      assertThat(agent.nodeName()).isEqualTo("lab-1");
      assertThat(agent.labels()).isEqualTo(Map.of("zone", "lab", "gpu", "none"));
      assertThat(agent.hostRoot()).isEqualTo(Path.of("/tmp"));
      assertThat(agent.profileOverrides()).isEqualTo(overrides);
      assertThat(agent.maxConcurrent()).isEqualTo(4);
      assertThat(agent.hostProcessNamespaces()).isEqualTo(Set.of("jobs"));
      assertThat(agent.workDir()).isEqualTo(Path.of("/var/lib/stasis"));
      assertThat(agent.retries().base()).hasMinutes(1);
      assertThat(agent.runtime()).isEqualTo(new RuntimeSettings(Path.of("/etc/k3s/containerd.toml"),
          Path.of("/run/crio.sock"), RuntimeSettings.Restore.ENABLED, Path.of("/srv/images")));
      assertThat(agent.travellingLimits()).isEqualTo(new TravellingFileLimits(0, 8L << 30));
    } finally {
      java.nio.file.Files.delete(overrides);
    }
  }

  @Test
  void twoNodesAreTwoAgentsWithTheirOwnWorkFolders() {
    var agents = local("--nodes", "2", "--max-concurrent", "3", "--travelling-files-max-count", "5")
        .agentConfigs(STATE);
    assertThat(agents).extracting(AgentConfig::nodeName).containsExactly("local", "local-b");
    assertThat(agents).extracting(AgentConfig::workDir).containsExactly(STATE.resolve("work"), STATE.resolve("work-local-b"));
    assertThat(agents.get(1).hostProcessNamespaces()).isEqualTo(agents.get(0).hostProcessNamespaces());
    assertThat(agents.get(1).maxConcurrent()).as("the agent flags apply to each").isEqualTo(3);
    assertThat(agents.get(1).travellingLimits().maxFiles()).isEqualTo(5);
    assertThat(agents.get(1).kubelet().url().getHost()).isEqualTo("local-b");

    assertThat(local().agentConfigs(STATE)).extracting(AgentConfig::nodeName).containsExactly("local");
    assertThat(local("--node", "lab", "--nodes", "3").agentConfigs(STATE)).extracting(AgentConfig::nodeName)
        .containsExactly("lab", "lab-b", "lab-c");
    assertThatThrownBy(() -> local("--nodes", "0")).isInstanceOf(CommandLine.ParameterException.class)
        .hasMessageContaining("--nodes").hasMessageContaining("'0' is not a number of agents from 1 to 26");
  }

  /** The flag changed meaning (a namespace's own pods need no allowance now): the old name is refused, saying so. */
  @Test
  void theOldProcessTargetFlagIsRefusedWithWhatReplacedIt() {
    assertThatThrownBy(() -> local("--allow-process-targets", "jobs"))
        .isInstanceOf(CommandLine.ParameterException.class).hasMessageContaining("--allow-host-processes NS,...");
  }

  static LocalCommand local(String... args) {
    var parsed = Main.commandLine().parseArgs(concat("local", args));
    return (LocalCommand) parsed.subcommand().commandSpec().userObject();
  }

  private static String[] concat(String first, String... rest) {
    String[] all = new String[rest.length + 1];
    all[0] = first;
    System.arraycopy(rest, 0, all, 1, rest.length);
    return all;
  }
}
