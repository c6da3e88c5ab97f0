package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Duration;
import java.util.List;

/** Checkpoints of pods as the pod tests create them and wait for them, and the Events of a resource. */
public final class PodCheckpoints {
  private PodCheckpoints() {}

  public static Checkpoint create(KubernetesClient admin, String namespace, String name, CheckpointTarget target,
      String storage) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    c.setSpec(new CheckpointSpec(target));
    c.getSpec().storage = storage;
    return admin.resource(c).create();
  }

  /** Waits until {@code c} is Completed or Failed, and asserts that it ended in {@code phase}. */
  public static Checkpoint awaitPhase(KubernetesClient admin, Checkpoint c, CheckpointPhase phase, Duration timeout) {
    var resource = admin.resources(Checkpoint.class).inNamespace(c.getMetadata().getNamespace())
        .withName(c.getMetadata().getName());
    await().atMost(timeout).until(() -> {
      var s = resource.get().getStatus();
      return s != null && s.phase != null && s.phase.isTerminal();
    });
    Checkpoint now = resource.get();
    assertThat(now.getStatus().phase).as("%s: %s", now.getStatus().reason, now.getStatus().message).isEqualTo(phase);
    return now;
  }

  public static List<Event> events(KubernetesClient admin, String namespace, String name) {
    return admin.v1().events().inNamespace(namespace).list().getItems().stream()
        .filter(e -> name.equals(e.getInvolvedObject().getName())).toList();
  }
}
