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
    Restore done = awaitEnd(admin, admin.resource(of(namespace, checkpoint, checkpoint)).create(), timeout);
    assertThat(done.getStatus().phase).as("%s: %s", done.getStatus().reason, done.getStatus().message)
        .isEqualTo(RestorePhase.Completed);
    return done;
  }

  /** A Restore named {@code name} of Checkpoint {@code checkpoint}, to create. */
  public static Restore of(String namespace, String name, String checkpoint) {
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    return restore;
  }

  /** {@code restore} once Completed or Failed. */
  public static Restore awaitEnd(KubernetesClient admin, Restore restore, Duration timeout) {
    var resource = admin.resources(Restore.class).inNamespace(restore.getMetadata().getNamespace())
        .withName(restore.getMetadata().getName());
    await().atMost(timeout).until(() -> {
      var s = resource.get().getStatus();
      return s != null && s.phase != null && s.phase.isTerminal();
    });
    return resource.get();
  }
}
