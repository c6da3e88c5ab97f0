package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointRef;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Duration;

/** Restores of a checkpoint as the end-to-end tests create them and wait for them. */
public final class Restores {
  private Restores() {}

  /** Restores Checkpoint {@code checkpoint} of {@code namespace} and waits until it is Completed. */
  public static Restore completed(KubernetesClient admin, String namespace, String checkpoint, Duration timeout) {
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName(checkpoint).withNamespace(namespace).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    admin.resource(restore).create();
    var resource = admin.resources(Restore.class).inNamespace(namespace).withName(checkpoint);
    await().atMost(timeout).until(() -> {
      var s = resource.get().getStatus();
      return s != null && s.phase != null && s.phase.isTerminal();
    });
    Restore done = resource.get();
    assertThat(done.getStatus().phase).as("%s: %s", done.getStatus().reason, done.getStatus().message)
        .isEqualTo(RestorePhase.Completed);
    return done;
  }
}
