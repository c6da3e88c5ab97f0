package dev.stasis.operator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointScheduleStatus;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Conditions;
import dev.stasis.api.StatusLimits;
import dev.stasis.api.PodTarget;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.TaintBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import dev.stasis.testing.GitOpsConditions;
import dev.stasis.testing.TestingClock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The schedule's decisions, on the fabric8 CRUD mock server, with a clock the test moves. */
@EnableKubernetesMockClient(crud = true)
class CheckpointScheduleReconcilerTest {
  static final String NS = "jobs";
  static final String NODE = "node-a";
  static final DateTimeFormatter NAME_TIME = DateTimeFormatter.ofPattern("yyyyMMddHHmmss").withZone(ZoneOffset.UTC);

  KubernetesClient client;
  /** When the mock server created the schedule: it stamps its own creation times. */
  Instant created;
  TestingClock clock;
  CheckpointScheduleReconciler reconciler;

  @BeforeEach
  void setUp() {
    clock = new TestingClock(Instant.now());
    reconciler = new CheckpointScheduleReconciler(client, new EventRecorder(client, "operator", "test"), clock);
  }

  // --- refused specs ---

  @Test
  void invalidCron() {
    assertFailed(reconcile(schedule("s", "61 * * * *", s -> {})), "InvalidSchedule",
        "spec.schedule: the minute field '61' is out of range 0-59");
  }

  @Test
  void unknownTimeZone() {
    assertFailed(reconcile(schedule("s", "@daily", s -> s.timeZone = "Mars/Olympus_Mons")), "UnknownTimeZone",
        "'Mars/Olympus_Mons' is not an IANA time zone");
  }

  @Test
  void negativeRetention() {
    assertFailed(reconcile(schedule("s", "@daily", s -> {
      s.retention = new CheckpointScheduleSpec.Retention();
      s.retention.keepFailed = -1;
    })), "InvalidRetention", "spec.retention.keepFailed must be 0 or more, got -1");
    assertFailed(reconcile(schedule("t", "@daily", s -> {
      s.retention = new CheckpointScheduleSpec.Retention();
      s.retention.keepLast = 0;
    })), "InvalidRetention", "keepLast must be 1 or more");
  }

  @Test
  void templateAndSelector() {
    assertFailed(reconcile(schedule("s", "@daily", s -> s.selector = new LabelSelector())), "InvalidTarget",
        "set exactly one of spec.checkpointTemplate (a fixed target) or spec.selector");
  }

  @Test
  void neitherTemplateNorSelector() {
    assertFailed(reconcile(schedule("s", "@daily", s -> s.checkpointTemplate = null)), "InvalidTarget",
        "set exactly one of spec.checkpointTemplate (a fixed target) or spec.selector");
  }

  @Test
  void aSelectorTheApiServerWouldRefuse() {
    assertFailed(reconcile(selecting("s", "@daily", s -> s.selector = new LabelSelectorBuilder()
        .addNewMatchExpression().withKey("app").withOperator("Equals").withValues("sim").endMatchExpression().build())),
        "InvalidSelector", "operator 'Equals' of key 'app' is none of In, NotIn, Exists, DoesNotExist");
    assertFailed(reconcile(selecting("t", "@daily", s -> s.selector = new LabelSelectorBuilder()
        .addNewMatchExpression().withKey("app").withOperator("In").endMatchExpression().build())),
        "InvalidSelector", "operator In of key 'app' needs values");
  }

  @Test
  void aFixedSpecIsScheduledAgain() {
    CheckpointSchedule s = reconcile(schedule("s", "@every 1 minute", spec -> {}));
    assertFailed(s, "InvalidSchedule", "not a duration");
    s.getSpec().schedule = "@every 1m";
    s.getMetadata().setGeneration(2L);
    client.resource(s).update();
    s = reconcile(s);
    assertThat(s.getStatus().phase).isEqualTo(CheckpointScheduleStatus.ACTIVE);
    assertThat(s.getStatus().reason).isNull();
    GitOpsConditions.assertReady(s.getStatus(), "Scheduled", 2);
    assertThat(Conditions.isTrue(s.getStatus().conditions, Conditions.FAILED)).isFalse();
    assertThat(s.getStatus().nextScheduleTime).isEqualTo(at(60));
  }

  // --- runs ---

  @Test
  void selectorFieldsWithATemplate() {
    assertFailed(reconcile(schedule("s", "@daily", s -> s.ttl = "1d")), "InvalidTarget",
        "spec.containers, storage, ttl, retainArchive and backoffLimit only go with spec.selector");
  }

  @Test
  void anInvalidTtlOfASelectorSchedule() {
    assertFailed(reconcile(selecting("s", "@daily", s -> s.ttl = "one day")), "InvalidTtl", "spec.ttl: 'one day'");
  }

  @Test
  void aDueRunCreatesOneCheckpointOwnedByTheSchedule() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.checkpointTemplate.backoffLimit = 5);
    clock.now = created.plusSeconds(9);
    s = reconcile(s);
    assertThat(checkpoints()).isEmpty();
    assertThat(s.getStatus().nextScheduleTime).isEqualTo(at(10));

    clock.now = created.plusMillis(10_050);
    s = reconcile(s);
    reconcile(s);
    List<Checkpoint> created = checkpoints();
    assertThat(created).hasSize(1);
    Checkpoint c = created.get(0);
    assertThat(c.getMetadata().getName()).isEqualTo(run(10));
    assertThat(c.getMetadata().getLabels()).containsEntry(Labels.SCHEDULE, "sim")
        .containsEntry(Labels.TRIGGER, Labels.TRIGGER_SCHEDULE);
    assertThat(c.getMetadata().getAnnotations()).containsEntry(ScheduleCheckpoints.SCHEDULED_TIME, at(10));
    assertThat(c.getMetadata().getOwnerReferences()).singleElement().satisfies(o -> {
      assertThat(o.getUid()).isEqualTo(s(sim()).getMetadata().getUid());
      assertThat(o.getBlockOwnerDeletion()).isFalse();
    });
    assertThat(c.getSpec().target.process.pid).isEqualTo(4242);
    assertThat(c.getSpec().backoffLimit).isEqualTo(5);
    s = s(sim());
    assertThat(s.getStatus().runs).isEqualTo(1);
    assertThat(s.getStatus().lastScheduleTime).isEqualTo(at(10));
    assertThat(s.getStatus().nextScheduleTime).isEqualTo(at(20));
    assertThat(s.getStatus().active).containsExactly(run(10));
  }

  @Test
  void aRunWhoseStatusWriteWasLostIsNotTakenTwice() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    reconcile(s);
    // as if the operator stopped after creating the Checkpoint, before writing the status
    CheckpointSchedule written = s(sim());
    written.setStatus(new CheckpointScheduleStatus());
    client.resource(written).updateStatus();
    s = reconcile(s);
    assertThat(checkpoints()).hasSize(1);
    assertThat(s.getStatus().runs).isEqualTo(1);
    assertThat(s.getStatus().skipped).isZero();
    assertThat(s.getStatus().lastScheduleTime).isEqualTo(at(10));
  }

  @Test
  void afterAnOutageOnlyTheLatestMissedRunIsTaken() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    s = reconcile(s);
    finish(run(10), CheckpointPhase.Completed);
    clock.now = created.plusSeconds(45); // down for the runs at :20, :30 and :40
    s = reconcile(s);
    assertThat(names()).containsExactly(run(10), run(40));
    assertThat(s.getStatus().runs).isEqualTo(2);
    assertThat(s.getStatus().nextScheduleTime).isEqualTo(at(50));
  }

  @Test
  void aRunPastItsStartingDeadlineIsSkipped() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.startingDeadlineSeconds = 5L);
    clock.now = created.plusSeconds(17);
    s = reconcile(s);
    assertThat(checkpoints()).isEmpty();
    assertThat(s.getStatus().missed).isEqualTo(1);
    assertThat(s.getStatus().lastSkippedTime).isEqualTo(at(10));
    assertWarning("MissedRun", "could not start within startingDeadlineSeconds (5s)");
    clock.now = created.plusSeconds(24);
    s = reconcile(s);
    assertThat(names()).containsExactly(run(20));
    assertThat(s.getStatus().missed).isEqualTo(1);
  }

  @Test
  void forbidSkipsARunWhileOneIsBeingTaken() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    reconcile(s);
    clock.now = created.plusSeconds(20);
    s = reconcile(s);
    assertThat(names()).containsExactly(run(10));
    assertThat(s.getStatus().skipped).isEqualTo(1);
    assertThat(s.getStatus().lastSkippedTime).isEqualTo(at(20));
    finish(run(10), CheckpointPhase.Completed);
    clock.now = created.plusSeconds(30);
    s = reconcile(s);
    assertThat(names()).containsExactly(run(10), run(30));
    assertThat(s.getStatus().succeeded).isEqualTo(1);
  }

  @Test
  void replaceDeletesTheCheckpointBeingTaken() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Replace);
    clock.now = created.plusSeconds(10);
    reconcile(s);
    clock.now = created.plusSeconds(20);
    s = reconcile(s);
    assertThat(names()).containsExactly(run(20));
    assertThat(s.getStatus().active).containsExactly(run(20));
    assertThat(s.getStatus().runs).isEqualTo(2);
  }

  @Test
  void allowTakesAnotherWhileOneIsBeingTaken() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Allow);
    clock.now = created.plusSeconds(10);
    reconcile(s);
    clock.now = created.plusSeconds(20);
    s = reconcile(s);
    assertThat(s.getStatus().active).containsExactly(run(10), run(20));
  }

  @Test
  void countsOutcomes() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Allow);
    clock.now = created.plusSeconds(10);
    reconcile(s);
    clock.now = created.plusSeconds(20);
    reconcile(s);
    finish(run(10), CheckpointPhase.Completed);
    finish(run(20), CheckpointPhase.Failed);
    s = reconcile(s);
    s = reconcile(s);
    assertThat(s.getStatus().succeeded).isEqualTo(1);
    assertThat(s.getStatus().failed).isEqualTo(1);
    assertThat(s.getStatus().active).isEmpty();
    assertThat(s.getStatus().lastSuccessfulTime).isEqualTo(at(21));
  }

  @Test
  void suspendStopsRuns() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.suspend = true);
    clock.now = created.plusSeconds(35);
    s = reconcile(s);
    assertThat(checkpoints()).isEmpty();
    assertThat(s.getStatus().phase).isEqualTo(CheckpointScheduleStatus.SUSPENDED);
    assertThat(s.getStatus().nextScheduleTime).isNull();
    GitOpsConditions.assertReady(s.getStatus(), "Suspended", s.getMetadata().getGeneration());
  }

  // --- retention ---

  @Test
  void retentionKeepsTheNewestCompletedAndFailedOnes() {
    CheckpointSchedule s = schedule("sim", "@yearly", spec -> {
      spec.retention = new CheckpointScheduleSpec.Retention();
      spec.retention.keepLast = 2;
    });
    existing("sim-1", CheckpointPhase.Completed);
    existing("sim-2", CheckpointPhase.Failed);
    existing("sim-3", CheckpointPhase.Completed);
    existing("sim-4", CheckpointPhase.Failed);
    existing("sim-5", CheckpointPhase.Completed);
    existing("sim-6", CheckpointPhase.Running);
    reconcile(s);
    assertThat(names()).containsExactly("sim-3", "sim-4", "sim-5", "sim-6");
  }

  // --- drains ---

  @Test
  void oneCheckpointPerDrain() {
    CheckpointSchedule s = schedule("sim", "@yearly", spec -> {
      spec.triggers = new CheckpointScheduleSpec.Triggers();
      spec.triggers.onNodeDrain = true;
    });
    client.resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata().build()).create();
    reconcile(s);
    assertThat(checkpoints()).isEmpty();

    clock.now = created.plusSeconds(100);
    client.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editOrNewSpec().withUnschedulable(true).endSpec().build());
    reconcile(s);
    clock.now = created.plusSeconds(101);
    client.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editSpec()
        .addToTaints(new TaintBuilder().withKey("maintenance").withEffect("NoExecute").build()).endSpec().build());
    s = reconcile(s);
    assertThat(names()).containsExactly(drain(100));
    assertThat(checkpoints().get(0).getMetadata().getLabels()).containsEntry(Labels.TRIGGER, Labels.TRIGGER_DRAIN);
    assertThat(s.getStatus().drainTriggered).isEqualTo(1);
    assertThat(s.getStatus().drains).singleElement().satisfies(d -> assertThat(d.node).isEqualTo(NODE));

    client.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editSpec().withUnschedulable(false).withTaints().endSpec().build());
    finish(drain(100), CheckpointPhase.Completed);
    s = reconcile(s);
    assertThat(s.getStatus().drains).isEmpty();
    clock.now = created.plusSeconds(200);
    client.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editSpec().withUnschedulable(true).endSpec().build());
    s = reconcile(s);
    assertThat(names()).containsExactly(drain(100), drain(200));
    assertThat(s.getStatus().drainTriggered).isEqualTo(2);
  }

  @Test
  void aPodTargetIsDrainedWithTheNodeItIsScheduledOn() {
    CheckpointSchedule s = schedule("sim", "@yearly", spec -> {
      spec.checkpointTemplate.target = new CheckpointTarget();
      spec.checkpointTemplate.target.pod = new PodTarget("solver", null);
      spec.triggers = new CheckpointScheduleSpec.Triggers();
      spec.triggers.onNodeDrain = true;
    });
    client.resource(new PodBuilder().withNewMetadata().withName("solver").withNamespace(NS).endMetadata()
        .withNewSpec().withNodeName(NODE).endSpec().build()).create();
    client.resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata()
        .withNewSpec().withUnschedulable(true).endSpec().build()).create();
    reconcile(s);
    assertThat(checkpoints()).singleElement().satisfies(c -> {
      assertThat(c.getMetadata().getName()).isEqualTo(drain(0));
      assertThat(c.getSpec().target.pod.name).isEqualTo("solver");
    });
  }

  @Test
  void aDrainCheckpointCreatedButNotRecordedCountsForItsDrain() {
    CheckpointSchedule s = schedule("sim", "@yearly", spec -> {
      spec.triggers = new CheckpointScheduleSpec.Triggers();
      spec.triggers.onNodeDrain = true;
    });
    client.resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata()
        .withNewSpec().withUnschedulable(true).endSpec().build()).create();
    reconcile(s);
    CheckpointSchedule written = s(sim());
    written.setStatus(new CheckpointScheduleStatus());
    client.resource(written).updateStatus();
    clock.now = created.plusSeconds(5);
    reconcile(s);
    assertThat(checkpoints()).hasSize(1);
  }

  // --- selector: one checkpoint per selected pod ---

  @Test
  void aRunTakesOneCheckpointOfEachRunningSelectedPod() {
    runningPod("sim-0", NODE, Map.of("app", "sim"));
    runningPod("sim-1", "node-b", Map.of("app", "sim", "tier", "solver"));
    runningPod("other", NODE, Map.of("app", "other"));
    client.resource(new PodBuilder().withNewMetadata().withName("sim-2").withNamespace(NS).addToLabels("app", "sim")
        .endMetadata().withNewSpec().addNewContainer().withName("solver").endContainer().endSpec()
        .withNewStatus().withPhase("Pending").endStatus().build()).create();
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> {
      spec.containers = List.of("solver");
      spec.storage = "store";
      spec.ttl = "2d";
      spec.retainArchive = true;
      spec.backoffLimit = 1;
    });
    clock.now = created.plusSeconds(10);
    s = reconcile(s);

    assertThat(names()).containsExactly(run(10) + "-sim-0", run(10) + "-sim-1");
    for (Checkpoint c : checkpoints()) {
      String pod = c.getSpec().target.pod.name;
      assertThat(c.getMetadata().getName()).isEqualTo(run(10) + "-" + pod);
      assertThat(c.getMetadata().getLabels()).containsEntry(Labels.SCHEDULE, "sim").containsEntry(Labels.POD, pod)
          .containsEntry(Labels.TRIGGER, Labels.TRIGGER_SCHEDULE);
      assertThat(c.getMetadata().getOwnerReferences()).singleElement()
          .satisfies(o -> assertThat(o.getUid()).isEqualTo(sim().getMetadata().getUid()));
      assertThat(c.getSpec().target.pod.containers).containsExactly("solver");
      assertThat(c.getSpec().storage).isEqualTo("store");
      assertThat(c.getSpec().ttl).isEqualTo("2d");
      assertThat(c.getSpec().retainArchive).isTrue();
      assertThat(c.getSpec().backoffLimit).isEqualTo(1);
    }
    assertThat(s.getStatus().runs).isEqualTo(2);
    assertThat(s.getStatus().active).containsExactly(run(10) + "-sim-0", run(10) + "-sim-1");
    assertThat(s.getStatus().lastScheduleTime).isEqualTo(at(10));
    assertThat(s.getStatus().selectedPods).isEqualTo(3);
    assertThat(s.getStatus().skippedPods).singleElement().satisfies(p -> {
      assertThat(p.pod).isEqualTo("sim-2");
      assertThat(p.reason).isEqualTo("PodNotRunning");
      assertThat(p.message).contains("is Pending and not scheduled to a node");
    });
    assertThat(Conditions.isTrue(s.getStatus().conditions, CheckpointScheduleReconciler.PODS_SELECTED)).isTrue();
    assertWarning("PodsSkipped", "skipped 1 pod (status.skippedPods): pod sim-2 (PodNotRunning)");

    // a pod without the named container is skipped too, and says so
    runningPod("sim-3", NODE, Map.of("app", "sim"), "app");
    clock.now = created.plusSeconds(20);
    s = reconcile(s);
    assertThat(s.getStatus().skippedPods).extracting(p -> p.pod + " " + p.reason)
        .contains("sim-3 ContainerNotFound", "sim-0 CheckpointInProgress", "sim-1 CheckpointInProgress");
    assertThat(s.getStatus().skipped).isEqualTo(2);
  }

  @Test
  void aRunThatSelectsNoPodsSaysSoOnceAndWaitsForTheNext() {
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    s = reconcile(s);
    s = reconcile(s);
    assertThat(checkpoints()).isEmpty();
    assertThat(s.getStatus().phase).isEqualTo(CheckpointScheduleStatus.ACTIVE);
    assertThat(s.getStatus().lastSkippedTime).isEqualTo(at(10));
    assertThat(s.getStatus().nextScheduleTime).isEqualTo(at(20));
    assertThat(s.getStatus().selectedPods).isZero();
    var condition = Conditions.find(s.getStatus().conditions, CheckpointScheduleReconciler.PODS_SELECTED);
    assertThat(condition.getStatus()).isEqualTo("False");
    assertThat(condition.getReason()).isEqualTo("NoPodsSelected");
    assertWarning("NoPodsSelected", "selected no pods: no pod in namespace jobs has labels matching spec.selector (app=sim)");
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .filteredOn(e -> e.getReason().equals("NoPodsSelected")).hasSize(1);

    runningPod("sim-0", NODE, Map.of("app", "sim"));
    clock.now = created.plusSeconds(20);
    s = reconcile(s);
    assertThat(names()).containsExactly(run(20) + "-sim-0");
    assertThat(Conditions.isTrue(s.getStatus().conditions, CheckpointScheduleReconciler.PODS_SELECTED)).isTrue();
  }

  /**
   * A selector that finds 300 pods none of which can be checkpointed: the status lists 50 and counts
   * them all by reason, the Event names a few; neither grows with the number of pods.
   */
  @Test
  void skippedPodsAreCountedByReasonAndListedOnlyInPart() {
    for (int i = 0; i < 300; i++) {
      client.resource(new PodBuilder().withNewMetadata().withName("sim-%03d".formatted(i)).withNamespace(NS)
          .addToLabels("app", "sim").endMetadata().withNewSpec().addNewContainer().withName("solver").endContainer()
          .endSpec().withNewStatus().withPhase("Pending").endStatus().build()).create();
    }
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    s = reconcile(s);

    assertThat(s.getStatus().selectedPods).isEqualTo(300);
    assertThat(s.getStatus().skippedPods).hasSize(StatusLimits.MAX_LISTED);
    assertThat(s.getStatus().skippedPodsByReason).singleElement().satisfies(r -> {
      assertThat(r.reason).isEqualTo("PodNotRunning");
      assertThat(r.count).isEqualTo(300);
    });
    assertThat(Conditions.find(s.getStatus().conditions, CheckpointScheduleReconciler.PODS_SELECTED).getMessage())
        .contains("selected 300 pods and skipped 300");
    assertThat(Serialization.asJson(s.getStatus()).length()).as("the status stays small").isLessThan(32 << 10);
    assertThat(client.v1().events().inNamespace(NS).list().getItems()).filteredOn(e -> e.getReason().equals("PodsSkipped"))
        .singleElement().satisfies(e -> assertThat(e.getMessage()).startsWith("the run due at " + at(10)
            + " skipped 300 pods (status.skippedPods): pod sim-000 (PodNotRunning)").endsWith("; …")
            .hasSizeLessThanOrEqualTo(StatusLimits.MAX_MESSAGE_CHARS));
  }

  @Test
  void forbidSkipsOnlyThePodWhoseCheckpointIsStillBeingTaken() {
    runningPod("sim-0", NODE, Map.of("app", "sim"));
    runningPod("sim-1", NODE, Map.of("app", "sim"));
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    reconcile(s);
    finish(run(10) + "-sim-0", CheckpointPhase.Completed);
    clock.now = created.plusSeconds(20);
    s = reconcile(s);
    assertThat(names()).containsExactly(run(10) + "-sim-0", run(10) + "-sim-1", run(20) + "-sim-0");
    assertThat(s.getStatus().skipped).isEqualTo(1);
    assertThat(s.getStatus().runs).isEqualTo(3);
    assertThat(s.getStatus().lastScheduleTime).isEqualTo(at(20));
    assertThat(s.getStatus().skippedPods).singleElement().satisfies(p -> {
      assertThat(p.pod).isEqualTo("sim-1");
      assertThat(p.reason).isEqualTo("CheckpointInProgress");
      assertThat(p.message).isEqualTo(run(10) + "-sim-1 is still being taken (concurrencyPolicy Forbid)");
    });
  }

  @Test
  void replaceReplacesOnlyThatPodsCheckpoint() {
    runningPod("sim-0", NODE, Map.of("app", "sim"));
    runningPod("sim-1", NODE, Map.of("app", "sim"));
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Replace);
    clock.now = created.plusSeconds(10);
    reconcile(s);
    finish(run(10) + "-sim-0", CheckpointPhase.Completed);
    clock.now = created.plusSeconds(20);
    reconcile(s);
    assertThat(names()).containsExactly(run(10) + "-sim-0", run(20) + "-sim-0", run(20) + "-sim-1");
  }

  @Test
  void aSelectorRunWhoseStatusWriteWasLostIsNotTakenTwice() {
    runningPod("sim-0", NODE, Map.of("app", "sim"));
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    reconcile(s);
    CheckpointSchedule written = sim();
    written.setStatus(new CheckpointScheduleStatus());
    client.resource(written).updateStatus();
    s = reconcile(s);
    assertThat(names()).containsExactly(run(10) + "-sim-0");
    assertThat(s.getStatus().runs).isEqualTo(1);
    assertThat(s.getStatus().skipped).isZero();
  }

  @Test
  void retentionKeepsTheNewestCheckpointsOfEachPod() {
    CheckpointSchedule s = selecting("sim", "@yearly", spec -> {
      spec.retention = new CheckpointScheduleSpec.Retention();
      spec.retention.keepLast = 2;
      spec.retention.maxAge = "1h";
    });
    existing("sim-1-b", "b", CheckpointPhase.Completed); // pod b's only one: kept, however old
    existing("sim-2-a", "a", CheckpointPhase.Completed);
    existing("sim-3-a", "a", CheckpointPhase.Completed);
    existing("sim-4-a", "a", CheckpointPhase.Failed);
    existing("sim-5-a", "a", CheckpointPhase.Completed);
    existing("sim-6-b", "b", CheckpointPhase.Running);
    reconcile(s);
    assertThat(names()).containsExactly("sim-1-b", "sim-3-a", "sim-4-a", "sim-5-a", "sim-6-b");
    clock.now = created.plusSeconds(3600 + 60); // the mock server stamped them in the seconds after the schedule
    reconcile(s);
    assertThat(names()).as("past maxAge: the newest Completed one of each pod stays")
        .containsExactly("sim-1-b", "sim-5-a", "sim-6-b");
  }

  @Test
  void longPodNamesGiveValidCheckpointNamesAndLabels() {
    String longName = "p".repeat(200) + "." + "q".repeat(52);
    runningPod(longName, NODE, Map.of("app", "sim"));
    runningPod(longName.substring(0, 252) + "r", NODE, Map.of("app", "sim"));
    CheckpointSchedule s = selecting("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    reconcile(s);
    List<Checkpoint> taken = checkpoints();
    assertThat(taken).hasSize(2);
    assertThat(names().get(0)).isNotEqualTo(names().get(1));
    for (Checkpoint c : taken) {
      String name = c.getMetadata().getName();
      String pod = c.getSpec().target.pod.name;
      assertThat(name).hasSizeLessThanOrEqualTo(253).startsWith(run(10) + "-ppp")
          .matches("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
          .isEqualTo(ScheduleCheckpoints.name(sim(), created.plusSeconds(10), Labels.TRIGGER_SCHEDULE, pod));
      assertThat(c.getMetadata().getLabels().get(Labels.POD)).hasSize(63).isEqualTo(Labels.podValue(pod))
          .matches("[a-z0-9]([-a-z0-9_.]*[a-z0-9])?");
    }
  }

  @Test
  void aDrainTakesOneCheckpointOfEachSelectedPodOnTheNode() {
    runningPod("sim-0", NODE, Map.of("app", "sim"));
    runningPod("sim-1", NODE, Map.of("app", "sim"));
    runningPod("sim-2", "node-b", Map.of("app", "sim"));
    runningPod("other", NODE, Map.of("app", "other"));
    client.resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata().build()).create();
    client.resource(new NodeBuilder().withNewMetadata().withName("node-b").endMetadata().build()).create();
    CheckpointSchedule s = selecting("sim", "@yearly", spec -> {
      spec.triggers = new CheckpointScheduleSpec.Triggers();
      spec.triggers.onNodeDrain = true;
    });
    reconcile(s);
    assertThat(checkpoints()).isEmpty();

    clock.now = created.plusSeconds(100);
    client.nodes().withName(NODE).edit(n -> new NodeBuilder(n).editOrNewSpec().withUnschedulable(true).endSpec().build());
    reconcile(s);
    clock.now = created.plusSeconds(101);
    s = reconcile(s);
    assertThat(names()).containsExactly(drain(100) + "-sim-0", drain(100) + "-sim-1");
    assertThat(checkpoints()).allSatisfy(c -> assertThat(c.getMetadata().getLabels())
        .containsEntry(Labels.TRIGGER, Labels.TRIGGER_DRAIN).containsEntry(Labels.POD, c.getSpec().target.pod.name));
    assertThat(s.getStatus().drainTriggered).isEqualTo(2);
    assertThat(s.getStatus().drains).extracting(d -> d.node + " " + d.pod)
        .containsExactly(NODE + " sim-0", NODE + " sim-1");
    assertThat(s.getStatus().runs).isZero();
  }

  // --- deletion ---

  @Test
  void deletingAScheduleKeepsItsCheckpointsButDropsTheOwnerReference() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> {});
    clock.now = created.plusSeconds(10);
    reconcile(s);
    reconciler.cleanup(s(sim()), null);
    assertThat(checkpoints()).singleElement()
        .satisfies(c -> assertThat(c.getMetadata().getOwnerReferences()).isEmpty());
  }

  @Test
  void deletingAScheduleDeletesItsCheckpointsWhenToldTo() {
    CheckpointSchedule s = schedule("sim", "@every 10s", spec -> spec.deleteCheckpointsWithSchedule = true);
    clock.now = created.plusSeconds(10);
    reconcile(s);
    reconciler.cleanup(s(sim()), null);
    assertThat(checkpoints()).isEmpty();
  }

  // --- helpers ---

  private CheckpointSchedule schedule(String name, String cron, Consumer<CheckpointScheduleSpec> customize) {
    CheckpointSchedule s = new CheckpointSchedule();
    s.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withGeneration(1L)
        .build());
    s.setSpec(new CheckpointScheduleSpec());
    s.getSpec().schedule = cron;
    s.getSpec().checkpointTemplate = new CheckpointTemplate();
    s.getSpec().checkpointTemplate.target = CheckpointTarget.process(NODE, 4242);
    customize.accept(s.getSpec());
    s = client.resource(s).create();
    created = Instant.parse(s.getMetadata().getCreationTimestamp());
    clock.now = created;
    return s;
  }

  /** A schedule of the pods labelled app=sim. */
  private CheckpointSchedule selecting(String name, String cron, Consumer<CheckpointScheduleSpec> customize) {
    return schedule(name, cron, spec -> {
      spec.checkpointTemplate = null;
      spec.selector = new LabelSelector(null, Map.of("app", "sim"));
      customize.accept(spec);
    });
  }

  /** A pod bound to {@code node} and Running, as the kubelet reports it; one container "solver" unless named. */
  private void runningPod(String name, String node, Map<String, String> labels, String... containers) {
    var pod = new PodBuilder().withNewMetadata().withName(name).withNamespace(NS).withLabels(labels).endMetadata()
        .withNewSpec().withNodeName(node).endSpec().withNewStatus().withPhase("Running").endStatus();
    for (String container : containers.length == 0 ? new String[] {"solver"} : containers) {
      pod.editSpec().addNewContainer().withName(container).endContainer().endSpec()
          .editStatus().addNewContainerStatus().withName(container).withContainerID("cri-o://" + name + container)
          .withNewState().withNewRunning().endRunning().endState().endContainerStatus().endStatus();
    }
    client.resource(pod.build()).create();
  }

  /** Created in the order of their names: the mock server stamps the same second on all. */
  private void existing(String name, CheckpointPhase phase) {
    existing(name, null, phase);
  }

  private void existing(String name, String pod, CheckpointPhase phase) {
    Checkpoint c = new Checkpoint();
    Map<String, String> labels = new java.util.HashMap<>(Map.of(Labels.SCHEDULE, "sim", Labels.TRIGGER, Labels.TRIGGER_SCHEDULE));
    if (pod != null) {
      labels.put(Labels.POD, pod);
    }
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).withLabels(labels).build());
    c.setSpec(new CheckpointTemplate().toCheckpointSpec());
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    client.resource(c).updateStatus();
  }

  private void finish(String name, CheckpointPhase phase) {
    Checkpoint c = client.resources(Checkpoint.class).inNamespace(NS).withName(name).get();
    c.setStatus(new CheckpointStatus());
    c.getStatus().phase = phase;
    c.getStatus().completionTime = clock.now.plusSeconds(1).toString();
    client.resource(c).updateStatus();
  }

  private String run(long secondsAfterCreation) {
    return "sim-" + NAME_TIME.format(created.plusSeconds(secondsAfterCreation));
  }

  private String drain(long secondsAfterCreation) {
    return "sim-drain-" + NAME_TIME.format(created.plusSeconds(secondsAfterCreation));
  }

  private String at(long secondsAfterCreation) {
    return created.plusSeconds(secondsAfterCreation).toString();
  }

  private CheckpointSchedule sim() {
    return client.resources(CheckpointSchedule.class).inNamespace(NS).withName("sim").get();
  }

  private static CheckpointSchedule s(CheckpointSchedule s) {
    return s;
  }

  private List<Checkpoint> checkpoints() {
    return client.resources(Checkpoint.class).inNamespace(NS).list().getItems();
  }

  private List<String> names() {
    return checkpoints().stream().map(c -> c.getMetadata().getName()).sorted().toList();
  }

  private CheckpointSchedule reconcile(CheckpointSchedule s) {
    reconciler.reconcile(client.resource(s).get(), null);
    return client.resource(s).get();
  }

  private void assertFailed(CheckpointSchedule s, String reason, String message) {
    assertThat(s.getStatus().phase).isEqualTo(CheckpointScheduleStatus.FAILED);
    assertThat(s.getStatus().reason).isEqualTo(reason);
    assertThat(s.getStatus().message).contains(message);
    GitOpsConditions.assertStalled(s.getStatus(), reason, s.getMetadata().getGeneration());
    assertThat(Conditions.isTrue(s.getStatus().conditions, Conditions.FAILED)).isTrue();
    assertThat(checkpoints()).isEmpty();
    assertWarning(reason, message);
  }

  private void assertWarning(String reason, String message) {
    assertThat(client.v1().events().inNamespace(NS).list().getItems())
        .anyMatch(e -> e.getReason().equals(reason) && e.getType().equals("Warning") && e.getMessage().contains(message));
  }
}
