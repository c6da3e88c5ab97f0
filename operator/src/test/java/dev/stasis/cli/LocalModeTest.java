package dev.stasis.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.TravellingFileLimits;
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
    assertThat(agent.travellingLimits()).isEqualTo(TravellingFileLimits.DEFAULT);
  }

  @Test
  void theAgentsFlagsApply() {
    AgentConfig agent = LocalMode.agentConfig(new Flags(List.of("--node", "lab-1", "--node-labels", "zone=lab,gpu=none",
        "--host-root", "/host", "--profile-overrides", "/etc/overrides.json", "--max-concurrent", "4",
        "--allow-host-processes", "jobs", "--work-dir", "/var/lib/stasis", "--travelling-files-max-count", "0",
        "--travelling-files-max-bytes", "8589934592")), STATE);
    assertThat(agent.nodeName()).isEqualTo("lab-1");
    assertThat(agent.labels()).isEqualTo(Map.of("zone", "lab", "gpu", "none"));
    assertThat(agent.hostRoot()).isEqualTo(Path.of("/host"));
    assertThat(agent.profileOverrides()).isEqualTo(Path.of("/etc/overrides.json"));
    assertThat(agent.maxConcurrent()).isEqualTo(4);
    assertThat(agent.hostProcessNamespaces()).isEqualTo(Set.of("jobs"));
    assertThat(agent.workDir()).isEqualTo(Path.of("/var/lib/stasis"));
    assertThat(agent.travellingLimits()).isEqualTo(new TravellingFileLimits(0, 8L << 30));
  }

  @Test
  void aTravellingFileLimitThatIsNoWholeNumberIsRefusedSayingWhatItWants() {
    assertThatThrownBy(() -> LocalMode.agentConfig(new Flags(List.of("--travelling-files-max-bytes", "1Gi")), STATE))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("--travelling-files-max-bytes wants a whole number from 0 to 9223372036854775807, got '1Gi'");
  }

  /** The flag changed meaning (a namespace's own pods need no allowance now): the old name is refused, saying so. */
  @Test
  void theOldProcessTargetFlagIsRefusedWithWhatReplacedIt() {
    assertThatThrownBy(() -> LocalMode.agentConfig(new Flags(List.of("--allow-process-targets", "jobs")), STATE))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("--allow-host-processes NS,...");
  }
}
