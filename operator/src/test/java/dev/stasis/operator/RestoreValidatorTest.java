package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.RegistrySpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.ScheduleRef;
import dev.stasis.kube.Labels;
import dev.stasis.testing.TestStorage;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Which Checkpoint a Restore restores, and what the operator refuses in it, without a server. */
class RestoreValidatorTest {
  static final String NS = "jobs";

  final Map<String, Checkpoint> checkpoints = new HashMap<>();
  final Map<String, CheckpointStorage> storages = new HashMap<>(Map.of(
      "fs", TestStorage.filesystem("fs", Path.of("/srv")).build(),
      "fs-registry", TestStorage.filesystem("fs-registry", Path.of("/srv")).with(spec -> {
        spec.registry = new RegistrySpec();
        spec.registry.url = "https://registry.example.com/stasis";
      }).build()));
  final RestoreValidator.Observed observed = new RestoreValidator.Observed() {
    @Override
    public Checkpoint checkpoint(String name) {
      return checkpoints.get(name);
    }

    @Override
    public List<Checkpoint> ofSchedule(String schedule) {
      return checkpoints.values().stream().filter(c -> schedule.equals(c.getMetadata().getLabels().get(Labels.SCHEDULE)))
          .toList();
    }

    @Override
    public CheckpointStorage storage(String name) {
      return storages.get(name);
    }
  };

  @Test
  void aCompletedCheckpointIsRestoredAndOneStillTakenIsWaitedFor() throws Refusal {
    Checkpoint done = checkpoint("done", CheckpointPhase.Completed, "fs", null);
    checkpoint("running", CheckpointPhase.Running, "fs", null);
    checkpoint("new", null, "fs", null);
    assertThat(RestoreValidator.checkpointToRestore(restore("done"), observed)).containsSame(done);
    assertThat(RestoreValidator.checkpointToRestore(restore("running"), observed)).isEmpty();
    assertThat(RestoreValidator.checkpointToRestore(restore("new"), observed)).isEmpty();
  }

  @Test
  void exactlyOneOfCheckpointRefOrScheduleRef() {
    Restore both = restore("done");
    both.getSpec().scheduleRef = new ScheduleRef("nightly");
    assertRefused(both, "InvalidCheckpointRef", "set exactly one of spec.checkpointRef.name");
    Restore none = restore("done");
    none.getSpec().checkpointRef = null;
    assertRefused(none, "InvalidCheckpointRef", "set exactly one of spec.checkpointRef.name");
  }

  @Test
  void onlyCheckpointsOfItsOwnNamespaceThatCanStillBeRestored() {
    Restore other = restore("done");
    other.getSpec().checkpointRef.namespace = "team-b";
    assertRefused(other, "CrossNamespaceCheckpoint", "only use Checkpoints of its own namespace (jobs), not of team-b");
    assertRefused(restore("missing"), "CheckpointNotFound", "Checkpoint 'missing' does not exist in namespace jobs");
    checkpoint("failed", CheckpointPhase.Failed, "fs", null).getStatus().reason = "CriuFailed";
    assertRefused(restore("failed"), "CheckpointNotCompleted", "failed (CriuFailed) and has no archive to restore");
    checkpoint("deleted", CheckpointPhase.Completed, "fs", null).getMetadata().setDeletionTimestamp("2026-01-01T00:00:00Z");
    assertRefused(restore("deleted"), "CheckpointDeleted", "Checkpoint 'deleted' is being deleted");
  }

  @Test
  void aPodCheckpointNeedsAStorageWithARegistry() throws Refusal {
    podCheckpoint("pod-fs", "fs", null, null);
    assertRefused(restore("pod-fs"), "RegistryNotConfigured", "CheckpointStorage 'fs' names no registry");
    podCheckpoint("pod-gone", "gone", null, null);
    assertRefused(restore("pod-gone"), "StorageNotFound", "CheckpointStorage 'gone' holding the checkpoint");
    Checkpoint ok = podCheckpoint("pod-ok", "fs-registry", null, null);
    assertThat(RestoreValidator.checkpointToRestore(restore("pod-ok"), observed)).containsSame(ok);
  }

  @Test
  void aScheduleRefRestoresTheNewestCompletedCheckpointOfTheSchedule() throws Refusal {
    Checkpoint older = checkpoint("nightly-1", CheckpointPhase.Completed, "fs", "nightly");
    older.getStatus().completionTime = "2026-01-01T02:00:05Z";
    Checkpoint newer = checkpoint("nightly-2", CheckpointPhase.Completed, "fs", "nightly");
    newer.getStatus().completionTime = "2026-01-02T02:00:05Z";
    checkpoint("nightly-3", CheckpointPhase.Running, "fs", "nightly");
    checkpoint("weekly-1", CheckpointPhase.Completed, "fs", "weekly").getStatus().completionTime = "2026-01-03T00:00:00Z";
    assertThat(RestoreValidator.checkpointToRestore(restoreOfSchedule("nightly", null), observed)).containsSame(newer);
    assertRefused(restoreOfSchedule("hourly", null), "NoCompletedCheckpoint",
        "schedule 'hourly' has no Completed checkpoint in namespace jobs");
  }

  @Test
  void aScheduleOfSeveralPodsNeedsThePodNamed() throws Refusal {
    podCheckpoint("web-0-1", "fs-registry", "web", "web-0");
    Checkpoint web1 = podCheckpoint("web-1-1", "fs-registry", "web", "web-1");
    assertRefused(restoreOfSchedule("web", null), "PodRequired", "has checkpoints of several pods (web-0, web-1)");
    assertThat(RestoreValidator.checkpointToRestore(restoreOfSchedule("web", "web-1"), observed)).containsSame(web1);
    assertRefused(restoreOfSchedule("web", "web-2"), "NoCompletedCheckpoint",
        "has no Completed checkpoint of pod 'web-2' in namespace jobs; it has some of pods web-0, web-1");
  }

  private void assertRefused(Restore restore, String reason, String text) {
    assertThatThrownBy(() -> RestoreValidator.checkpointToRestore(restore, observed)).isInstanceOfSatisfying(
        Refusal.class, r -> {
          assertThat(r.reason()).isEqualTo(reason);
          assertThat(r.getMessage()).contains(text);
        });
  }

  private Checkpoint checkpoint(String name, CheckpointPhase phase, String storage, String schedule) {
    return add(name, CheckpointTarget.process("node-a", 4242), phase, storage, schedule, null);
  }

  private Checkpoint podCheckpoint(String name, String storage, String schedule, String pod) {
    return add(name, CheckpointTarget.pod(pod == null ? "web" : pod, null), CheckpointPhase.Completed, storage, schedule,
        pod);
  }

  private Checkpoint add(String name, CheckpointTarget target, CheckpointPhase phase, String storage, String schedule,
      String podLabel) {
    Map<String, String> labels = new HashMap<>();
    if (schedule != null) {
      labels.put(Labels.SCHEDULE, schedule);
    }
    if (podLabel != null) {
      labels.put(Labels.POD, podLabel);
    }
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withLabels(labels)
        .withCreationTimestamp("2026-01-01T00:00:00Z").build());
    c.setSpec(new CheckpointSpec(target));
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().storage = storage;
    checkpoints.put(name, c);
    return c;
  }

  private static Restore restore(String checkpoint) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName("r").withNamespace(NS).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    return r;
  }

  private static Restore restoreOfSchedule(String schedule, String pod) {
    Restore r = restore(null);
    r.getSpec().checkpointRef = null;
    r.getSpec().scheduleRef = new ScheduleRef(schedule, pod);
    return r;
  }
}
