package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.RuntimeSettings;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.CounterPods;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real node's containerd 2.3.4 with restores from checkpoint images turned off
 * ({@code enable_experimental_restore_via_create = false}, its default): its NodeProfile says so, a
 * Restore of a pod checkpoint never goes there and says what to set; and when the node's
 * administrator states the opposite (--runtime-restore=enabled), containerd's own refusal comes
 * back in its own words with what to change. Checkpoints still work: they need only CRIU.
 */
@ExtendWith(TestNode.Extension.class)
class RuntimeRestoreOnNodeIT {
  static final Duration TIMEOUT = Duration.ofSeconds(120);
  static final String SYSTEM = "stasis-system";

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static Path token;
  static String namespace;
  static Checkpoint checkpoint;

  @BeforeAll
  static void checkpointWithRestoresOff(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    node.restoreViaCreate(false);
    String image = WorkloadImages.push(node.registry(), "workloads/pod-counter", "1", "pod-counter", "/count");
    token = node.writeToken(dir.resolve("agent.token"), SYSTEM, "stasis-agent");
    String storage = node.podStorage("runtime-off", dir.resolve("storage"), null);
    namespace = node.newNamespace("rtoff");
    CounterPods.run(admin, namespace, "web", Map.of("app", "web"), image, "app");
    try (InProcessStasis stasis = stasis(RuntimeSettings.Restore.AUTO)) {
      checkpoint = PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, "web",
          CheckpointTarget.pod("web", "app"), storage), CheckpointPhase.Completed, TIMEOUT);
    }
  }

  @AfterAll
  static void restoresOnAgain() throws Exception {
    if (node != null) node.restoreViaCreate(true);
  }

  static InProcessStasis stasis(RuntimeSettings.Restore stated) {
    return node.startStasis(dir.resolve("work"), node.kubeletUrl(), token, node.runtime().withRestore(stated));
  }

  @Test
  void aNodeWhoseRuntimeDoesNotRestoreIsNeverChosenAndTheRestoreSaysWhatToSet() throws Exception {
    try (InProcessStasis stasis = stasis(RuntimeSettings.Restore.AUTO)) {
      Path config = node.runtime().containerdConfig();
      var restore = admin.resources(NodeProfile.class).withName(node.name()).get().getSpec().runtime.restore;
      assertThat(restore.restores()).isFalse();
      assertThat(restore.source).isEqualTo(NodeProfileSpec.RuntimeRestore.FROM_CONFIG);
      String why = "containerd 2.3.4 restores from checkpoint images only with enable_experimental_restore_via_create"
          + " = true, and it is false in " + config;
      String set = "set enable_experimental_restore_via_create = true in [plugins.\"io.containerd.cri.v1.runtime\"] of "
          + config + " and restart containerd";
      assertThat(restore.message).isEqualTo(why);
      assertThat(restore.remedy).isEqualTo(set);

      Restore failed = Restores.awaitEnd(admin, admin.resource(Restores.of(namespace, "nowhere", "web")).create(), TIMEOUT);
      assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
      assertThat(failed.getStatus().reason).isEqualTo("NoCompatibleNode");
      assertThat(failed.getStatus().message).isEqualTo("0/1 nodes can run this checkpoint: " + node.name()
          + " runtime cannot restore: " + why + "; " + set);
      assertThat(failed.getStatus().placement.rejected).singleElement()
          .satisfies(r -> assertThat(r.reasons).containsExactly("runtime cannot restore: " + why + "; " + set));
      assertThat(PodCheckpoints.events(admin, namespace, "nowhere"))
          .anyMatch(e -> e.getReason().equals("NoCompatibleNode") && e.getMessage().contains(set));
      assertThat(failed.getStatus().checkpointImages).as("nothing pushed").isNull();
      assertThat(admin.pods().inNamespace(namespace).list().getItems()).extracting(p -> p.getMetadata().getName())
          .as("no pod created").containsExactly("web");
    }
  }

  @Test
  void whenTheAdministratorSaysOtherwiseTheRuntimesOwnRefusalIsReported() throws Exception {
    try (InProcessStasis stasis = stasis(RuntimeSettings.Restore.ENABLED)) {
      var restore = admin.resources(NodeProfile.class).withName(node.name()).get().getSpec().runtime.restore;
      assertThat(restore.source).isEqualTo(NodeProfileSpec.RuntimeRestore.FROM_AGENT_FLAG);

      Restore failed = Restores.awaitEnd(admin, admin.resource(Restores.of(namespace, "refused", "web")).create(), TIMEOUT);
      assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
      assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("RuntimeCannotRestore");
      assertThat(failed.getStatus().message)
          .startsWith("the container runtime of node " + node.name() + " could not restore container app of pod "
              + failed.getStatus().restoredPod + " from its checkpoint image: CreateContainerError: ")
          .contains("checkpoint restore via CreateContainer is disabled by configuration")
          .contains("enable_experimental_restore_via_create = true")
          .endsWith("correct the agent's --runtime-restore");
      assertThat(PodCheckpoints.events(admin, namespace, "refused")).anyMatch(e -> e.getReason().equals("RuntimeCannotRestore"));
      await("the pod is deleted").atMost(TIMEOUT)
          .until(() -> admin.pods().inNamespace(namespace).withName(failed.getStatus().restoredPod).get() == null);
      String image = failed.getStatus().checkpointImages.get(0).image;
      var get = HttpRequest.newBuilder(URI.create("http://" + image.replaceFirst("/", "/v2/").replace("@", "/manifests/")))
          .header("Accept", "application/vnd.oci.image.manifest.v1+json").build();
      assertThat(HttpClient.newHttpClient().send(get, HttpResponse.BodyHandlers.discarding()).statusCode())
          .as("no dangling image").isEqualTo(404);
      assertThat(failed.getStatus().conditions).anySatisfy(c -> assertThat(c.getType() + " " + c.getStatus() + " "
          + c.getMessage()).isEqualTo("ImagesDeleted True deleted checkpoint image " + image + " from the registry:"
              + " the restore failed (RuntimeCannotRestore)"));
    }
  }
}
