package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleStatus.FailoverRecord;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileStatus;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreStatus;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import dev.stasis.testing.TestProfiles;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.TaintBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * failover.onNodeLost's decisions on the fabric8 CRUD mock server, with a clock the test moves: when
 * a node counts as lost, what is restored where, once per loss, and where the schedule goes on.
 * FailoverIT does it with real agents, one of them SIGKILLed.
 */
@EnableKubernetesMockClient(crud = true)
class ScheduleFailoverTest {
  static final String NS = "jobs";
  static final String HEARTBEAT = "2026-01-01T10:00:00Z";

  KubernetesClient client;
  TestingClock clock;
  CheckpointScheduleReconciler reconciler;

  @BeforeEach
  void setUp() {
    clock = new TestingClock(Instant.now());
    reconciler = new CheckpointScheduleReconciler(client, new EventRecorder(client, "operator", "test"), clock);
    client.resource(TestProfiles.node("node-a", Map.of())).create();
    client.resource(TestProfiles.node("node-b", Map.of())).create();
    heartbeat("node-a", HEARTBEAT);
  }

  @Test
  void aFailoverTooQuickOrOfPodsIsRefused() {
    assertRefused(schedule("quick", f -> f.onNodeLost.after = "30s"), "must be at least 60s");
    assertRefused(schedule("pods", f -> {}, s -> {
      s.checkpointTemplate = null;
      s.selector = new LabelSelector(null, Map.of("app", "sim"));
    }), "spec.failover.onNodeLost moves the target of a checkpointTemplate (a process tree or a pod)");
    assertRefused(schedule("selected", f -> {
      f.onNodeLost = null;
      f.onDrain = true;
    }, s -> {
      s.checkpointTemplate = null;
      s.selector = new LabelSelector(null, Map.of("app", "sim"));
    }), "spec.failover.onDrain moves the target of a checkpointTemplate (a process tree or a pod)");
  }

  @Test
  void aLostNodesTargetIsRestoredElsewhereOncePerLossAndTheScheduleFollowsIt() {
    CheckpointSchedule s = schedule("keep", f -> {});
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    waiting(s, "keep-2", "node-a");
    reconcile(s); // the operator sees node-a's heartbeat for the first time
    clock.now = clock.now.plusSeconds(59);
    reconcile(s);
    assertThat(restores()).as("not lost for a minute yet").isEmpty();

    clock.now = clock.now.plusSeconds(2);
    FailoverRecord record = reconcile(s).getStatus().failovers.get(0);
    assertThat(record.lostNode).isEqualTo("node-a");
    assertThat(record.lastHeartbeat).isEqualTo(HEARTBEAT);
    assertThat(record.checkpoint).isEqualTo("keep-1");
    assertThat(record.lostWorkSeconds).isEqualTo(101);
    assertThat(record.phase).isEqualTo("Pending");
    Restore restore = client.resources(Restore.class).inNamespace(NS).withName(record.restore).get();
    assertThat(restore.getMetadata().getName()).isEqualTo("keep-failover-20260101100000");
    assertThat(restore.getSpec().checkpointRef.name).isEqualTo("keep-1");
    assertThat(restore.getSpec().placement.excludeNodes).containsExactly("node-a");
    assertThat(restore.getMetadata().getLabels()).containsEntry(Labels.FAILOVER_FROM, "node-a");
    assertThat(ScheduleCheckpoints.isOwnedBy(checkpoint("keep-1"), s)).isTrue();
    assertThat(checkpoint("keep-2")).as("waited for the lost node: it would block later runs").isNull();
    assertWarning("FailedOver", "node node-a is lost: its agent's heartbeat has stayed " + HEARTBEAT + " for 61s");

    clock.now = clock.now.plusSeconds(600);
    reconcile(s);
    assertThat(restores()).as("once per loss").hasSize(1);

    restoreCompleted(record.restore, "node-b", 77);
    CheckpointSchedule followed = reconcile(s);
    assertThat(followed.getStatus().failovers).singleElement().satisfies(f -> {
      assertThat(f.phase).isEqualTo("Completed");
      assertThat(f.node).isEqualTo("node-b");
      assertThat(f.restoredPid).isEqualTo(77);
      assertThat(f.restoredProcess.startTicks).isEqualTo(777_000L);
    });
    assertThat(followed.getStatus().failedOverTarget.to.node).isEqualTo("node-b");
    assertThat(followed.getStatus().failedOverTarget.to.pid).isEqualTo(77);
    assertThat(followed.getStatus().process.sameProcessAs(identity("node-b", 77, 777_000L)))
        .as("pinned to the restored tree's root from the start").isTrue();
    assertThat(events()).contains("FailoverRestored");

    clock.now = Instant.parse(followed.getStatus().nextScheduleTime);
    reconcile(s);
    assertThat(client.resources(Checkpoint.class).inNamespace(NS).list().getItems())
        .filteredOn(c -> c.getStatus() == null)
        .singleElement().satisfies(c -> {
          assertThat(c.getSpec().target.process.node).as("the next run takes the restored tree").isEqualTo("node-b");
          assertThat(c.getSpec().target.process.pid).isEqualTo(77);
          assertThat(c.getSpec().target.process.pinned()).as("that process only, never whatever gets PID 77")
              .hasValueSatisfying(p -> assertThat(p.sameProcessAs(identity("node-b", 77, 777_000L))).isTrue());
        });
  }

  /** Only the agent is down while its kubelet reports the node Ready: the workload runs on there. */
  @Test
  void aNodeWhoseNodeObjectIsReadyIsNotFailedOver() {
    client.resource(new NodeBuilder().withNewMetadata().withName("node-a").endMetadata()
        .withNewStatus().addNewCondition().withType("Ready").withStatus("True").endCondition().endStatus().build()).create();
    CheckpointSchedule s = schedule("keep", f -> {});
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    reconcile(s);
    clock.now = clock.now.plusSeconds(600);
    assertThat(reconcile(s).getStatus().failovers).isEmpty();
    assertThat(restores()).isEmpty();
  }

  @Test
  void withFencingNoneTheRestoreIsNotMarkedForTheLostNodesAgent() {
    CheckpointSchedule s = schedule("keep", f -> f.fencing = CheckpointScheduleSpec.Fencing.None);
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    reconcile(s);
    clock.now = clock.now.plusSeconds(61);
    reconcile(s);
    assertThat(restores()).singleElement()
        .satisfies(r -> assertThat(r.getMetadata().getLabels()).doesNotContainKey(Labels.FAILOVER_FROM));
  }

  /** fencing: None for a pod: its object is left (the name stays taken), the restored pod gets a name of its own. */
  @Test
  void withFencingNoneALostNodesPodIsLeftAndRestoredUnderAnotherName() {
    pod("sim-0", "node-a", null);
    CheckpointSchedule s = schedule("keep", f -> f.fencing = CheckpointScheduleSpec.Fencing.None,
        spec -> spec.checkpointTemplate.target = CheckpointTarget.pod("sim-0", null));
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    reconcile(s);
    clock.now = clock.now.plusSeconds(61);
    reconcile(s);
    assertThat(restores()).singleElement().satisfies(r -> assertThat(r.getSpec().pod).isNull());
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).isNotNull();
  }

  @Test
  void withoutACompletedCheckpointTheLossIsSaidOnce() {
    CheckpointSchedule s = schedule("keep", f -> {});
    reconcile(s);
    clock.now = clock.now.plusSeconds(61);
    FailoverRecord record = reconcile(s).getStatus().failovers.get(0);
    assertThat(record.phase).isEqualTo("Failed");
    assertThat(record.reason).isEqualTo("NoCompletedCheckpoint");
    clock.now = clock.now.plusSeconds(61);
    assertThat(reconcile(s).getStatus().failovers).hasSize(1);
    assertThat(events().stream().filter("NoCompletedCheckpoint"::equals)).hasSize(1);
    assertThat(restores()).isEmpty();
  }

  /**
   * A lost node's pod: its object is deleted without grace (the fencing: its kubelet, back, ends the
   * old copy), and its newest checkpoint restored elsewhere under its name, once per loss.
   */
  @Test
  void aLostNodesPodIsDeletedAndRestoredUnderItsNameOncePerLoss() {
    pod("sim-0", "node-a", null);
    CheckpointSchedule s = schedule("keep", f -> {}, spec -> spec.checkpointTemplate.target = CheckpointTarget.pod("sim-0", null));
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    reconcile(s); // the operator sees node-a's heartbeat for the first time
    clock.now = clock.now.plusSeconds(59);
    reconcile(s);
    assertThat(restores()).as("not lost for a minute yet").isEmpty();
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).as("not fenced before the loss").isNotNull();

    clock.now = clock.now.plusSeconds(2);
    FailoverRecord record = reconcile(s).getStatus().failovers.get(0);
    assertThat(record.phase).isEqualTo("Pending");
    assertThat(record.checkpoint).isEqualTo("keep-1");
    assertThat(client.pods().inNamespace(NS).withName("sim-0").get()).as("fenced: the object is gone").isNull();
    Restore restore = client.resources(Restore.class).inNamespace(NS).withName(record.restore).get();
    assertThat(restore.getSpec().pod.name).as("back under its name").isEqualTo("sim-0");
    assertThat(restore.getSpec().placement.excludeNodes).containsExactly("node-a");
    assertThat(restore.getMetadata().getLabels()).as("no agent fences a pod").doesNotContainKey(Labels.FAILOVER_FROM);
    assertWarning("FailedOver", "pod sim-0 was deleted without grace, so that its kubelet ends the old copy when node"
        + " node-a comes back");

    clock.now = clock.now.plusSeconds(600);
    reconcile(s);
    assertThat(restores()).as("once per loss, while the pod is gone").hasSize(1);
    pod("sim-0", "node-b", null);
    restoreCompleted(record.restore, "node-b", null);
    Restore done = client.resources(Restore.class).inNamespace(NS).withName(record.restore).get();
    done.getStatus().restoredPod = "sim-0";
    client.resource(done).updateStatus();
    CheckpointSchedule followed = reconcile(s);
    assertThat(followed.getStatus().failovers).singleElement().satisfies(f -> {
      assertThat(f.phase).isEqualTo("Completed");
      assertThat(f.node).isEqualTo("node-b");
      assertThat(f.restoredPod).isEqualTo("sim-0");
    });
    assertWarning("FailedOver", "pod sim-0");
    assertThat(events()).contains("FailoverRestored");
    clock.now = clock.now.plusSeconds(600);
    reconcile(s);
    assertThat(restores()).as("node-a stays lost: still once").hasSize(1);
  }

  /** A pod whose ReplicaSet starts its copy elsewhere itself is neither deleted nor restored. */
  @Test
  void aLostNodesPodOfAReplicaSetIsLeftToIt() {
    pod("web-1", "node-a", new OwnerReferenceBuilder().withApiVersion("apps/v1").withKind("ReplicaSet").withName("web")
        .withUid("rs-uid").withController(true).build());
    CheckpointSchedule s = schedule("web", f -> {}, spec -> spec.checkpointTemplate.target = CheckpointTarget.pod("web-1", null));
    completed(s, "web-1", "node-a", clock.now.minusSeconds(40));
    reconcile(s);
    clock.now = clock.now.plusSeconds(61);
    FailoverRecord record = reconcile(s).getStatus().failovers.get(0);
    assertThat(record.phase).isEqualTo("Failed");
    assertThat(record.reason).isEqualTo("PodHasController");
    assertThat(record.message).contains("pod web-1 belongs to ReplicaSet web, which starts its copy elsewhere itself");
    assertThat(restores()).isEmpty();
    assertThat(client.pods().inNamespace(NS).withName("web-1").get()).isNotNull();
  }

  /** failover.onDrain: a drained node's target is moved by a Migration, and the schedule follows it. */
  @Test
  void aDrainedNodesTargetIsMovedAndTheScheduleFollowsIt() {
    client.resource(new NodeBuilder().withNewMetadata().withName("node-a").endMetadata()
        .withNewSpec().withUnschedulable(true).endSpec().build()).create();
    CheckpointSchedule s = schedule("keep", f -> {
      f.onNodeLost = null;
      f.onDrain = true;
      f.placement = new RestorePlacement();
      f.placement.nodeSelector = Map.of("zone", "west");
    });
    CheckpointSchedule drained = reconcile(s);
    String name = drained.getStatus().drains.get(0).migration;
    assertThat(name).startsWith("keep-drain-");
    Migration m = client.resources(Migration.class).inNamespace(NS).withName(name).get();
    assertThat(m.getSpec().target.process.node).isEqualTo("node-a");
    assertThat(m.getSpec().target.process.pid).isEqualTo(4242);
    assertThat(m.getSpec().placement.nodeSelector).containsEntry("zone", "west");
    assertThat(ScheduleCheckpoints.isOwnedBy(checkpointOf(m), s)).isTrue();
    assertThat(drained.getStatus().drainTriggered).isEqualTo(1);
    clock.now = clock.now.plusSeconds(10);
    reconcile(s);
    assertThat(client.resources(Migration.class).inNamespace(NS).list().getItems()).as("one per drain").hasSize(1);

    m.setStatus(new MigrationStatus());
    m.getStatus().phase = MigrationPhase.Completed;
    m.getStatus().sourceNode = "node-a";
    m.getStatus().node = "node-b";
    m.getStatus().restoredPid = 55;
    m.getStatus().restoredProcess = identity("node-b", 55, 555_000L);
    m.getStatus().completionTime = clock.now.toString();
    client.resource(m).updateStatus();
    CheckpointSchedule followed = reconcile(s);
    assertThat(followed.getStatus().failedOverTarget.to.node).isEqualTo("node-b");
    assertThat(followed.getStatus().failedOverTarget.by).isEqualTo(name);
    assertThat(events()).contains("TargetMoved");
    clock.now = Instant.parse(followed.getStatus().nextScheduleTime);
    reconcile(s);
    assertThat(client.resources(Checkpoint.class).inNamespace(NS).list().getItems()).singleElement()
        .satisfies(c -> {
          assertThat(c.getSpec().target.process.node).isEqualTo("node-b");
          assertThat(c.getSpec().target.process.startTicks).as("pinned to the Migration's restored root").isEqualTo(555_000L);
          assertThat(c.getSpec().target.process.bootId).isEqualTo("boot-node-b");
        });
  }

  /**
   * A restored tree known only by its PID (it ended before its agent saw it, or an older agent) is not
   * followed: a bare PID may be another process's by the next run. Later runs take the template's
   * target, pinned to the process the schedule found there, which fails ProcessChanged rather than
   * touch a newcomer.
   */
  @Test
  void aRestoredTreeKnownOnlyByItsPidIsNotFollowed() {
    CheckpointSchedule s = schedule("keep", f -> {});
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    Checkpoint first = checkpoint("keep-1");
    first.getStatus().process = identity("node-a", 4242, 1_000L);
    client.resource(first).updateStatus();
    reconcile(s);
    clock.now = clock.now.plusSeconds(61);
    FailoverRecord record = reconcile(s).getStatus().failovers.get(0);
    Restore r = client.resources(Restore.class).inNamespace(NS).withName(record.restore).get();
    r.setStatus(new RestoreStatus());
    r.getStatus().phase = RestorePhase.Completed;
    r.getStatus().node = "node-b";
    r.getStatus().restoredPid = 77;
    r.getStatus().completionTime = clock.now.toString();
    client.resource(r).updateStatus();

    CheckpointSchedule followed = reconcile(s);
    assertThat(followed.getStatus().failedOverTarget.to).as("no identity, no move").isNull();
    assertEvent("FailoverRestored", "its restored tree had ended before its agent saw it, so later checkpoints do not"
        + " follow it");
    clock.now = Instant.parse(followed.getStatus().nextScheduleTime);
    reconcile(s);
    assertThat(client.resources(Checkpoint.class).inNamespace(NS).list().getItems())
        .filteredOn(c -> c.getStatus() == null)
        .singleElement().satisfies(c -> {
          assertThat(c.getSpec().target.process.node).as("never PID 77 of node-b, bare").isEqualTo("node-a");
          assertThat(c.getSpec().target.process.startTicks).isEqualTo(1_000L);
        });
  }

  /**
   * A lost node gets the node lifecycle controller's NoExecute taints (unreachable, not-ready): that
   * is no drain. A schedule with both onNodeLost and onDrain fails over only, with no drain Migration
   * that would wait for the lost agent.
   */
  @Test
  void aLostNodesUnreachableTaintStartsTheFailoverOnlyNoDrainMigration() {
    client.resource(new NodeBuilder().withNewMetadata().withName("node-a").endMetadata()
        .withNewSpec().addNewTaint().withKey("node.kubernetes.io/unreachable").withEffect("NoExecute").endTaint()
        .addNewTaint().withKey("node.kubernetes.io/not-ready").withEffect("NoExecute").endTaint().endSpec()
        .withNewStatus().addNewCondition().withType("Ready").withStatus("Unknown").endCondition().endStatus().build())
        .create();
    CheckpointSchedule s = schedule("keep", f -> f.onDrain = true);
    completed(s, "keep-1", "node-a", clock.now.minusSeconds(40));
    reconcile(s);
    clock.now = clock.now.plusSeconds(61);
    CheckpointSchedule failedOver = reconcile(s);
    assertThat(failedOver.getStatus().failovers).singleElement()
        .satisfies(f -> assertThat(f.phase).isEqualTo("Pending"));
    assertThat(restores()).hasSize(1);
    assertThat(failedOver.getStatus().drains).isEmpty();
    assertThat(client.resources(Migration.class).inNamespace(NS).list().getItems()).as("no drain Migration").isEmpty();
    assertThat(events()).doesNotContain("NodeDraining");

    // A NoExecute taint of someone else's is a drain, as before.
    Node tainted = client.nodes().withName("node-a").get();
    tainted.getSpec().getTaints().add(new TaintBuilder().withKey("example.com/maintenance").withEffect("NoExecute").build());
    client.resource(tainted).update();
    clock.now = clock.now.plusSeconds(10);
    assertThat(reconcile(s).getStatus().drains).singleElement().satisfies(d -> assertThat(d.migration).isNotNull());
  }

  /**
   * failover.onDrain of a pod: the drained node's pod is moved by one Migration of that pod, with
   * failover.allowSourceNode passed on.
   */
  @Test
  void aDrainedNodesPodIsMovedByOneMigration() {
    client.resource(new NodeBuilder().withNewMetadata().withName("node-a").endMetadata()
        .withNewSpec().withUnschedulable(true).endSpec().build()).create();
    client.resource(new PodBuilder().withNewMetadata().withName("sim-0").withNamespace(NS).endMetadata()
        .withNewSpec().withNodeName("node-a").addNewContainer().withName("app").endContainer().endSpec()
        .withNewStatus().withPhase("Running").endStatus().build()).create();
    CheckpointSchedule s = schedule("keep", f -> {
      f.onNodeLost = null;
      f.onDrain = true;
      f.allowSourceNode = true;
    }, spec -> spec.checkpointTemplate.target = CheckpointTarget.pod("sim-0", null));
    CheckpointSchedule drained = reconcile(s);
    assertThat(drained.getStatus().reason).as(drained.getStatus().message).isNotEqualTo("InvalidFailover");
    String name = drained.getStatus().drains.get(0).migration;
    Migration m = client.resources(Migration.class).inNamespace(NS).withName(name).get();
    assertThat(m.getSpec().target.pod.name).isEqualTo("sim-0");
    assertThat(m.getSpec().allowSourceNode).isTrue();
    assertThat(events()).contains("NodeDraining");
    clock.now = clock.now.plusSeconds(10);
    reconcile(s);
    assertThat(client.resources(Migration.class).inNamespace(NS).list().getItems()).as("one per drain").hasSize(1);

    // The drain's Migration brings the pod back under a name of its own: later runs checkpoint that pod.
    client.pods().inNamespace(NS).withName("sim-0").delete();
    client.resource(new PodBuilder().withNewMetadata().withName("sim-0-x7k2p").withNamespace(NS).endMetadata()
        .withNewSpec().withNodeName("node-b").addNewContainer().withName("app").endContainer().endSpec()
        .withNewStatus().withPhase("Running").endStatus().build()).create();
    m.setStatus(new MigrationStatus());
    m.getStatus().phase = MigrationPhase.Completed;
    m.getStatus().sourceNode = "node-a";
    m.getStatus().node = "node-b";
    m.getStatus().restoredPod = "sim-0-x7k2p";
    m.getStatus().completionTime = clock.now.toString();
    client.resource(m).updateStatus();
    CheckpointSchedule followed = reconcile(s);
    assertThat(followed.getStatus().failedOverTarget.fromPod).isEqualTo("sim-0");
    assertThat(followed.getStatus().failedOverTarget.toPod).isEqualTo("sim-0-x7k2p");
    assertThat(events()).contains("TargetMoved");
    assertThat(client.resource(s).get().getSpec().checkpointTemplate.target.pod.name).as("the spec stays the user's")
        .isEqualTo("sim-0");
    clock.now = Instant.parse(followed.getStatus().nextScheduleTime);
    reconcile(s);
    assertThat(client.resources(Checkpoint.class).inNamespace(NS).list().getItems()).singleElement()
        .satisfies(c -> assertThat(c.getSpec().target.pod.name).isEqualTo("sim-0-x7k2p"));
  }

  /**
   * failover.onDrain with allowSourceNode on a drained node the pod comes back to (one node): while
   * the Migration has the pod away, its node is unknown; once it is back in place, on the node that is
   * still cordoned, that drain is done: no second Migration (a real drain once got one).
   */
  @Test
  void aPodMovedInPlaceOffADrainedNodeIsNotMovedAgain() {
    client.resource(new NodeBuilder().withNewMetadata().withName("node-a").endMetadata()
        .withNewSpec().withUnschedulable(true).endSpec().build()).create();
    pod("sim-0", "node-a", null);
    CheckpointSchedule s = schedule("keep", f -> {
      f.onNodeLost = null;
      f.onDrain = true;
      f.allowSourceNode = true;
    }, spec -> spec.checkpointTemplate.target = CheckpointTarget.pod("sim-0", null));
    String name = reconcile(s).getStatus().drains.get(0).migration;

    client.pods().inNamespace(NS).withName("sim-0").delete(); // the Migration deleted it, its checkpoint stored
    clock.now = clock.now.plusSeconds(10);
    reconcile(s);
    pod("sim-0-x7k2p", "node-a", null); // restored in place, on the node that is still cordoned
    Migration m = client.resources(Migration.class).inNamespace(NS).withName(name).get();
    m.setStatus(new MigrationStatus());
    m.getStatus().phase = MigrationPhase.Completed;
    m.getStatus().sourceNode = "node-a";
    m.getStatus().node = "node-a";
    m.getStatus().restoredPod = "sim-0-x7k2p";
    m.getStatus().completionTime = clock.now.toString();
    client.resource(m).updateStatus();
    clock.now = clock.now.plusSeconds(10);
    CheckpointSchedule followed = reconcile(s);
    assertThat(followed.getStatus().failedOverTarget.toPod).isEqualTo("sim-0-x7k2p");
    clock.now = clock.now.plusSeconds(10);
    reconcile(s);
    assertThat(client.resources(Migration.class).inNamespace(NS).list().getItems()).as("one per drain").hasSize(1);
    assertThat(client.resource(s).get().getStatus().drains).singleElement()
        .satisfies(d -> assertThat(d.migration).isEqualTo(name));

    Node uncordoned = client.nodes().withName("node-a").get();
    uncordoned.getSpec().setUnschedulable(false);
    client.resource(uncordoned).update();
    clock.now = clock.now.plusSeconds(10);
    assertThat(reconcile(s).getStatus().drains).as("forgotten once the node is schedulable again").isEmpty();
  }

  /** A Migration is owned like a Checkpoint: the check takes any resource with an owner reference to the schedule. */
  private static Checkpoint checkpointOf(Migration m) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(m.getMetadata());
    return c;
  }

  private CheckpointSchedule schedule(String name, Consumer<CheckpointScheduleSpec.Failover> failover) {
    return schedule(name, failover, s -> {});
  }

  private CheckpointSchedule schedule(String name, Consumer<CheckpointScheduleSpec.Failover> failover,
      Consumer<CheckpointScheduleSpec> customize) {
    CheckpointSchedule s = new CheckpointSchedule();
    s.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L).withUid("uid-" + name).build());
    s.setSpec(new CheckpointScheduleSpec());
    s.getSpec().schedule = "@every 1h";
    s.getSpec().checkpointTemplate = new CheckpointTemplate();
    s.getSpec().checkpointTemplate.target = CheckpointTarget.process("node-a", 4242);
    s.getSpec().failover = new CheckpointScheduleSpec.Failover();
    s.getSpec().failover.onNodeLost = new CheckpointScheduleSpec.NodeLost();
    s.getSpec().failover.onNodeLost.after = "1m";
    failover.accept(s.getSpec().failover);
    customize.accept(s.getSpec());
    s = client.resource(s).create();
    clock.now = Instant.parse(s.getMetadata().getCreationTimestamp());
    return s;
  }

  private void heartbeat(String node, String at) {
    var profile = client.resources(NodeProfile.class).withName(node).get();
    profile.setStatus(new NodeProfileStatus());
    profile.getStatus().heartbeatTime = at;
    client.resource(profile).updateStatus();
  }

  private void completed(CheckpointSchedule s, String name, String node, Instant started) {
    Checkpoint c = owned(s, name);
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Completed;
    c.getStatus().node = node;
    c.getStatus().startTime = started.toString();
    c.getStatus().completionTime = started.plusSeconds(2).toString();
    client.resource(c).updateStatus();
  }

  private void waiting(CheckpointSchedule s, String name, String node) {
    Checkpoint c = owned(s, name);
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = CheckpointPhase.Pending;
    c.getStatus().node = node;
    client.resource(c).updateStatus();
  }

  private Checkpoint owned(CheckpointSchedule s, String name) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS)
        .withLabels(Map.of(Labels.SCHEDULE, s.getMetadata().getName(), Labels.TRIGGER, Labels.TRIGGER_SCHEDULE))
        .withOwnerReferences(ScheduleCheckpoints.ownerReference(s)).build());
    c.setSpec(s.getSpec().checkpointTemplate.toCheckpointSpec());
    return client.resource(c).create();
  }

  private void pod(String name, String node, OwnerReference controller) {
    client.resource(new PodBuilder().withNewMetadata().withName(name).withNamespace(NS)
        .withOwnerReferences(controller == null ? List.of() : List.of(controller)).endMetadata()
        .withNewSpec().withNodeName(node).addNewContainer().withName("app").endContainer().endSpec()
        .withNewStatus().withPhase("Running").endStatus().build()).create();
  }

  /** The Restore completed as its agent completes it: a tree's root recorded as an identity too. */
  private void restoreCompleted(String name, String node, Integer pid) {
    Restore r = client.resources(Restore.class).inNamespace(NS).withName(name).get();
    r.setStatus(new RestoreStatus());
    r.getStatus().phase = RestorePhase.Completed;
    r.getStatus().node = node;
    r.getStatus().restoredPid = pid;
    r.getStatus().restoredProcess = pid == null ? null : identity(node, pid, 777_000L);
    r.getStatus().completionTime = clock.now.toString();
    client.resource(r).updateStatus();
  }

  private static ProcessIdentity identity(String node, int pid, long startTicks) {
    ProcessIdentity identity = new ProcessIdentity();
    identity.node = node;
    identity.pid = pid;
    identity.startTicks = startTicks;
    identity.bootId = "boot-" + node;
    return identity;
  }

  private Checkpoint checkpoint(String name) {
    return client.resources(Checkpoint.class).inNamespace(NS).withName(name).get();
  }

  private List<Restore> restores() {
    return client.resources(Restore.class).inNamespace(NS).list().getItems();
  }

  private CheckpointSchedule reconcile(CheckpointSchedule s) {
    reconciler.reconcile(client.resource(s).get(), null);
    return client.resource(s).get();
  }

  private List<String> events() {
    return client.v1().events().inNamespace(NS).list().getItems().stream().map(Event::getReason).toList();
  }

  private void assertRefused(CheckpointSchedule s, String message) {
    CheckpointSchedule now = reconcile(s);
    assertThat(now.getStatus().reason).isEqualTo("InvalidFailover");
    assertThat(now.getStatus().message).contains(message);
  }

  private void assertEvent(String reason, String message) {
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .anyMatch(e -> e.getReason().equals(reason) && e.getMessage().contains(message));
  }

  private void assertWarning(String reason, String message) {
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .anyMatch(e -> e.getReason().equals(reason) && e.getType().equals("Warning") && e.getMessage().contains(message));
  }
}
