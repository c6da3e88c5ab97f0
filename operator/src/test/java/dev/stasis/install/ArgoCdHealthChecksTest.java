package dev.stasis.install;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.testing.ArgoCdHealth;
import dev.stasis.testing.Kstatus;
import dev.stasis.testing.TestControlPlane;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * The Argo CD health checks as shipped (docs/argocd): the values snippet registers the script for
 * every kind a Git repository holds, and the script says Progressing where kstatus (Flux) says
 * InProgress before the operator has seen an object. GitOpsIT runs both on each kind's real life.
 */
class ArgoCdHealthChecksTest {
  static final Path VALUES = TestControlPlane.repoRoot().resolve("docs/argocd/values.yaml");

  @Test
  void theValuesSnippetRegistersTheScriptUnchangedForEveryKindAGitRepositoryHolds() throws Exception {
    Map<String, Object> values = new Yaml().load(Files.readString(VALUES));
    @SuppressWarnings("unchecked")
    Map<String, Object> cm = (Map<String, Object>) ((Map<String, Object>) values.get("configs")).get("cm");
    String script = Files.readString(ArgoCdHealth.SCRIPT);
    assertThat(cm).containsOnlyKeys("resource.customizations.health.stasis.dev_Checkpoint",
        "resource.customizations.health.stasis.dev_Restore",
        "resource.customizations.health.stasis.dev_CheckpointSchedule",
        "resource.customizations.health.stasis.dev_CheckpointStorage",
        "resource.customizations.health.stasis.dev_Migration");
    assertThat(cm.values()).allSatisfy(registered -> assertThat(registered).isEqualTo(script));
  }

  @Test
  void anObjectTheOperatorHasNotSeenIsProgressingAndInProgress() throws Exception {
    Kstatus kstatus = new Kstatus(Path.of("unused"));
    String created = """
        {"apiVersion": "stasis.dev/v1alpha1", "kind": "Checkpoint",
         "metadata": {"name": "c", "namespace": "jobs", "generation": 1}, "spec": {}}""";
    assertThat(ArgoCdHealth.of(created))
        .isEqualTo(new ArgoCdHealth.Health("Progressing", "waiting for the Stasis operator"));
    // kstatus cannot tell: an object without a status looks Current to it (README, GitOps)
    assertThat(kstatus.ofJson(created).status()).isEqualTo("Current");

    String changed = """
        {"apiVersion": "stasis.dev/v1alpha1", "kind": "CheckpointSchedule",
         "metadata": {"name": "s", "namespace": "jobs", "generation": 3},
         "status": {"observedGeneration": 2, "phase": "Active", "conditions": [
           {"type": "Ready", "status": "True", "reason": "Scheduled", "observedGeneration": 2,
            "message": "checkpoints are taken on schedule", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}""";
    assertThat(ArgoCdHealth.of(changed))
        .isEqualTo(new ArgoCdHealth.Health("Progressing", "waiting for the Stasis operator to see generation 3"));
    assertThat(kstatus.ofJson(changed))
        .isEqualTo(new Kstatus.Result("InProgress", "CheckpointSchedule generation is 3, but latest observed generation is 2"));
  }
}
