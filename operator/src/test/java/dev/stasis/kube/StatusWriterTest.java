package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.Conditions;
import dev.stasis.testing.GitOpsConditions;
import dev.stasis.testing.TestStorage;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Statuses are built afresh each pass and written only when they say something new: a pass that
 * finds the same writes nothing, however much later it runs (no condition's time moves), so
 * watchers (GitOps tools, the operator's own informers) see no endless stream of updates.
 */
@EnableKubernetesMockClient(crud = true)
class StatusWriterTest {
  static final String OLD = "2026-01-01T00:00:00Z";

  KubernetesClient client;

  @Test
  void aStatusBuiltAfreshThatSaysNothingNewIsNotWrittenAndKeepsItsTransitionTimes() {
    StatusWriter writer = new StatusWriter(client);
    CheckpointStorage storage = TestStorage.filesystem("fs", Path.of("/srv/checkpoints")).generation(1).create(client);
    CheckpointStorage written = writer.replace(storage, available());
    GitOpsConditions.assertReady(written.getStatus(), "Checked", 1);
    // as if that pass had run a while ago
    written.getStatus().conditions.forEach(c -> c.setLastTransitionTime(OLD));
    written = client.resource(written).updateStatus();

    CheckpointStorage again = writer.replace(written, available());
    assertThat(again.getMetadata().getResourceVersion()).as("nothing written").isEqualTo(
        written.getMetadata().getResourceVersion());
    assertThat(read().getStatus().conditions).extracting(Condition::getLastTransitionTime).containsOnly(OLD);

    CheckpointStorageStatus down = new CheckpointStorageStatus();
    down.phase = CheckpointStorageStatus.UNAVAILABLE;
    down.reason = "StorageUnavailable";
    down.message = "filesystem storage /srv/checkpoints: not writable";
    Conditions.set(down, Conditions.AVAILABLE, false, down.reason, down.message, 1L);
    CheckpointStorage changed = writer.replace(read(), down);
    assertThat(changed.getMetadata().getResourceVersion()).isNotEqualTo(written.getMetadata().getResourceVersion());
    GitOpsConditions.assertStalled(changed.getStatus(), "StorageUnavailable", 1);
    assertThat(Conditions.find(changed.getStatus().conditions, Conditions.READY).getLastTransitionTime())
        .as("Ready turned False: a new transition").isNotEqualTo(OLD);
  }

  private static CheckpointStorageStatus available() {
    CheckpointStorageStatus status = new CheckpointStorageStatus();
    status.phase = CheckpointStorageStatus.AVAILABLE;
    status.message = "checked: objects can be written, read and deleted";
    Conditions.set(status, Conditions.AVAILABLE, true, "Checked", status.message, 1L);
    return status;
  }

  private CheckpointStorage read() {
    return client.resources(CheckpointStorage.class).withName("fs").get();
  }
}
