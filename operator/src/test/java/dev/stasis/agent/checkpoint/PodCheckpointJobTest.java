package dev.stasis.agent.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.criu.Criu;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.testing.AssignedWork;
import dev.stasis.testing.TestAgent;
import dev.stasis.testing.TestStorage;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The pod checkpoint job on its own, on the fabric8 CRUD mock: what it leaves after an agent that died. */
@EnableKubernetesMockClient(crud = true)
class PodCheckpointJobTest {
  KubernetesClient client;
  @TempDir Path dir;
  @RegisterExtension final TestAgent agent = new TestAgent();

  /**
   * The agent died during a pod checkpoint, and the kubelet's archive of it (all the container's
   * memory) is left in the kubelet's folder: the next agent deletes that one, but not the archive
   * of pod web of namespace a-b (whose name the old pattern checkpoint-web_a-* matched), nor one of
   * another container, nor one from before this attempt started. What the attempt stored is deleted,
   * and the attempt is tried again.
   */
  @Test
  void aDeadAgentsKubeletArchiveAndStoredObjectsAreDeletedButNoOtherNamespacesOrContainers() throws Exception {
    Path kubeletDir = Files.createDirectories(dir.resolve("kubelet-checkpoints"));
    TestStorage.filesystem("fs", dir.resolve("storage")).create(client);
    Checkpoint abandoned = AssignedWork.checkpoint(client, "node-a", "a", "web", null, CheckpointPhase.Running);
    abandoned.getSpec().target = CheckpointTarget.pod("web", "app");
    abandoned = client.resource(abandoned).update();
    abandoned.getStatus().storage = "fs";
    abandoned.getStatus().containers = List.of(new ContainerCheckpointStatus("app", "cri-o://1"));
    abandoned.getStatus().startTime = "2026-12-05T10:00:00Z";
    abandoned = client.resource(abandoned).updateStatus();
    Path ours = Files.writeString(kubeletDir.resolve("checkpoint-web_a-app-2026-12-05T10:00:02Z.tar"), "memory");
    List<Path> theirs = List.of(
        Files.writeString(kubeletDir.resolve("checkpoint-web_a-b-app-2026-12-05T10:00:02Z.tar"), "namespace a-b's"),
        Files.writeString(kubeletDir.resolve("checkpoint-web_a-sidecar-2026-12-05T10:00:02Z.tar"), "another container"),
        Files.writeString(kubeletDir.resolve("checkpoint-web_a-app-2026-12-04T10:00:02Z.tar"), "an older attempt's"));
    Path stored = dir.resolve("storage").resolve(RecordedManifest.layout(abandoned).containerManifestKey("app"));
    Files.createDirectories(stored.getParent());
    Files.writeString(stored, "a manifest the dead agent wrote");

    var again = new PodCheckpointJob(agent.work(client, config(kubeletDir))).resolveAbandoned(abandoned);

    assertThat(again).as("nothing to wait for").isEmpty();
    assertThat(ours).doesNotExist();
    assertThat(theirs).allMatch(Files::exists);
    assertThat(stored).doesNotExist();
    Checkpoint retrying = client.resource(abandoned).get();
    assertThat(retrying.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(retrying.getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(retrying.getStatus().nextRetryTime).isNotNull();
  }

  private AgentConfig config(Path kubeletCheckpoints) {
    var kubelet = new KubeletSettings(URI.create("https://127.0.0.1:1"), dir.resolve("token"), dir.resolve("ca.crt"),
        false, kubeletCheckpoints, Duration.ofSeconds(1));
    return new AgentConfig("node-a", dir.resolve("work"), new Criu(dir.resolve("no-criu"), Map.of()), Set.of(), kubelet);
  }
}
