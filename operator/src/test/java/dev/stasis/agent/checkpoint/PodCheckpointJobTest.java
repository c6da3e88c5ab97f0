package dev.stasis.agent.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.criu.Criu;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.testing.AssignedWork;
import dev.stasis.testing.TestStorage;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The pod checkpoint job on its own, on the fabric8 CRUD mock: what it leaves after an agent that died. */
@EnableKubernetesMockClient(crud = true)
class PodCheckpointJobTest {
  KubernetesClient client;
  @TempDir Path dir;
  private final AgentShutdown shutdown = new AgentShutdown();

  @AfterEach
  void stopAgent() {
    shutdown.begin();
  }

  /**
   * The kubelet's archives of the dead agent's attempt hold the containers' memory: those of this
   * pod's containers from the attempt on are deleted, another namespace's pod of the same name and
   * an older archive are not; what the attempt stored is deleted, and the attempt is tried again.
   */
  @Test
  void anAbandonedAttemptLeavesNoKubeletArchiveNorStoredObjectOfItsOwn() throws Exception {
    Path kubelet = Files.createDirectories(dir.resolve("kubelet-checkpoints"));
    Instant started = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    Path ours = Files.writeString(kubelet.resolve("checkpoint-web_shop-app-" + started + ".tar"), "memory");
    Path otherNamespace = Files.writeString(kubelet.resolve("checkpoint-web_shop-b-app-" + started + ".tar"), "memory");
    Path older = Files.writeString(kubelet.resolve("checkpoint-web_shop-app-" + started.minus(Duration.ofHours(1)) + ".tar"),
        "memory");
    TestStorage.filesystem("fs", dir.resolve("storage")).create(client);
    Checkpoint checkpoint = AssignedWork.checkpoint(client, "node-a", "shop", "c", null, CheckpointPhase.Running);
    checkpoint.getSpec().target = CheckpointTarget.pod("web", null);
    checkpoint = client.resource(checkpoint).update();
    checkpoint.getStatus().storage = "fs";
    checkpoint.getStatus().startTime = started.toString();
    checkpoint.getStatus().containers = List.of(new ContainerCheckpointStatus("app", "containerd://1"));
    checkpoint = client.resource(checkpoint).updateStatus();
    Path stored = dir.resolve("storage").resolve(RecordedManifest.layout(checkpoint).containerManifestKey("app"));
    Files.createDirectories(stored.getParent());
    Files.writeString(stored, "a manifest the dead agent wrote");

    var again = new PodCheckpointJob(nodeWork(kubelet)).resolveAbandoned(checkpoint);

    assertThat(again).as("nothing to wait for").isEmpty();
    assertThat(ours).doesNotExist();
    assertThat(otherNamespace).exists();
    assertThat(older).exists();
    assertThat(stored).doesNotExist();
    Checkpoint retrying = client.resource(checkpoint).get();
    assertThat(retrying.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(retrying.getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(retrying.getStatus().nextRetryTime).isNotNull();
  }

  private NodeWork nodeWork(Path kubeletCheckpoints) {
    var kubelet = new KubeletSettings(URI.create("https://127.0.0.1:1"), dir.resolve("token"), dir.resolve("ca.crt"),
        false, kubeletCheckpoints, Duration.ofSeconds(1));
    var config = new AgentConfig("node-a", dir.resolve("work"), new Criu(dir.resolve("no-criu"), Map.of()), Set.of(),
        kubelet, Path.of("/"), Map.of(), null);
    return new NodeWork(client, config, new EventRecorder(client, "agent", "node-a"), shutdown);
  }
}
