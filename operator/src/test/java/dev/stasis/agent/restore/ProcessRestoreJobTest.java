package dev.stasis.agent.restore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.criu.Criu;
import dev.stasis.criu.RestoreOptions;
import dev.stasis.testing.AssignedWork;
import dev.stasis.testing.TestAgent;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The process restore job on its own, on the fabric8 CRUD mock: a restore an agent left Restoring
 * when it died is decided from what CRIU left in the work folder, never tried again.
 */
@EnableKubernetesMockClient(crud = true)
class ProcessRestoreJobTest {
  KubernetesClient client;
  @TempDir Path dir;
  @RegisterExtension final TestAgent agent = new TestAgent();

  @Test
  void withoutCriusWordThatItRestoredNothingWasRestoredAndTheRestoreFails() throws Exception {
    Restore restore = AssignedWork.restore(client, "node-a", "ns", "r", "c", RestorePhase.Restoring);
    Path workDir = Files.createDirectories(dir.resolve("work/restores").resolve(restore.getMetadata().getUid()));

    var again = new ProcessRestoreJob(nodeWork()).resolveAbandoned(restore);

    assertThat(again).isEmpty();
    Restore failed = client.resource(restore).get();
    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("AgentRestarted");
    assertThat(failed.getStatus().message).contains("nothing was restored").endsWith("create a new Restore");
    assertThat(failed.getStatus().attempts).as("never tried again").isEqualTo(1);
    assertThat(workDir).doesNotExist();
  }

  /** CRIU restored the tree and it has ended since: both are true, and the folder goes once that is written. */
  @Test
  void aTreeRestoredThatHasEndedSinceIsCompletedAndExited() throws Exception {
    Restore restore = AssignedWork.restore(client, "node-a", "ns", "r", "c", RestorePhase.Restoring);
    Path workDir = Files.createDirectories(dir.resolve("work/restores").resolve(restore.getMetadata().getUid()));
    Files.writeString(workDir.resolve(RestoreOptions.LOG_FILE), "(00.012345) Restore finished successfully. Resuming tasks.\n");
    Process ended = new ProcessBuilder("true").start();
    ended.waitFor();
    Files.writeString(workDir.resolve(RestoreOptions.PID_FILE), Long.toString(ended.pid()));

    var again = new ProcessRestoreJob(nodeWork()).resolveAbandoned(restore);

    assertThat(again).isEmpty();
    Restore done = await().atMost(Duration.ofSeconds(10)).until(() -> client.resource(restore).get(),
        r -> "Exited".equals(r.getStatus().processState));
    assertThat(done.getStatus().phase).isEqualTo(RestorePhase.Completed);
    assertThat(done.getStatus().restoredPid).isEqualTo((int) ended.pid());
    assertThat(done.getStatus().restoredProcess).as("ended: nothing there to act on").isNull();
    assertThat(done.getStatus().message).contains("the tree has ended since");
    await().atMost(Duration.ofSeconds(10)).until(() -> !Files.exists(workDir));
  }

  private NodeWork nodeWork() {
    return agent.work(client, new AgentConfig("node-a", dir.resolve("work"), new Criu(dir.resolve("no-criu"), Map.of())));
  }
}
