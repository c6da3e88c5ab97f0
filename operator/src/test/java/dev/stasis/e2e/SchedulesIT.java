package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static java.time.temporal.ChronoUnit.SECONDS;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.ScheduleRef;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.kube.Labels;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.StorageBinding;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.TaintBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * CheckpointSchedules on real parts: {@code @every} periods of seconds on a real counter process,
 * the real API server (Nodes as plain objects: there is no kubelet), CRIU, and filesystem storage.
 */
class SchedulesIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  /** Seconds between the runs of the restart test: long enough for a restart on a busy machine. */
  static final int PERIOD = 6;

  @Test
  void runsOnTimeAcrossAnOperatorRestartThenRetentionAndRestoreOfTheNewest() throws Exception {
    Path out = cluster.dir().resolve("scheduled-count.txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 1);
    createSchedule("sim", "@every " + PERIOD + "s", cluster.node(), counter.pid(), spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Allow);
    Instant created = Instant.parse(schedule("sim").getMetadata().getCreationTimestamp());

    // on time: each run's Checkpoint is created within its second, on the 6 s grid of the schedule's creation
    await().atMost(TIMEOUT).until(() -> completed("sim").size() >= 2);
    for (Checkpoint c : checkpointsOf("sim")) {
      Instant due = scheduledTime(c);
      assertThat(Duration.between(created, due).toSeconds() % PERIOD).isZero();
      assertThat(Duration.between(due, createdAt(c))).isBetween(Duration.ZERO, Duration.ofSeconds(1));
    }

    // The operator and the agent stop just after a run (at L) and start again at L + 6.5 s: the run due
    // at L + 6 s is missed while they are down, and must be taken once, right at the restart (they
    // need a second or two to start, well before the run at L + 12 s).
    await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(50)).until(() -> {
      var status = schedule("sim").getStatus();
      return status.active.isEmpty()
          && Instant.now().isBefore(Instant.parse(status.lastScheduleTime).plusMillis(1500));
    });
    Instant last = Instant.parse(schedule("sim").getStatus().lastScheduleTime);
    cluster.stop();
    Thread.sleep(Math.max(0, Duration.between(Instant.now(), last.plusMillis(PERIOD * 1000 + 500)).toMillis()));
    Instant restarted = Instant.now();
    cluster.start();
    await().atMost(TIMEOUT).until(() -> completed("sim").stream()
        .filter(c -> scheduledTime(c).isAfter(last.plusSeconds(PERIOD))).count() >= 2);
    await().atMost(TIMEOUT).until(() -> schedule("sim").getStatus().active.isEmpty());

    List<Checkpoint> runs = checkpointsOf("sim").stream()
        .sorted(Comparator.comparing(SchedulesIT::scheduledTime)).toList();
    Checkpoint missed = runs.stream().filter(c -> scheduledTime(c).equals(last.plusSeconds(PERIOD))).findFirst()
        .orElseThrow(() -> new AssertionError("the run due at " + last.plusSeconds(PERIOD) + " was lost"));
    assertThat(createdAt(missed)).as("taken late, at the restart").isAfterOrEqualTo(restarted.truncatedTo(SECONDS))
        .isBefore(last.plusSeconds(2 * PERIOD));
    List<Instant> times = runs.stream().map(SchedulesIT::scheduledTime).toList();
    List<Instant> grid = Stream.iterate(times.get(0), t -> !t.isAfter(times.get(times.size() - 1)), t -> t.plusSeconds(PERIOD))
        .toList();
    assertThat(times).as("one run for each time of the schedule, none lost, none twice").isEqualTo(grid);
    CheckpointSchedule status = schedule("sim");
    assertThat(status.getStatus().runs).as("runs counted once each").isEqualTo(runs.size());
    assertThat(status.getStatus().succeeded).isEqualTo(runs.size());
    assertThat(status.getStatus().failed).isZero();

    // suspended: no more runs; retention: exactly the newest two, and exactly their archives
    cluster.client().resources(CheckpointSchedule.class).inNamespace(cluster.namespace()).withName("sim").edit(s -> {
      s.getSpec().suspend = true;
      s.getSpec().retention = new CheckpointScheduleSpec.Retention();
      s.getSpec().retention.keepLast = 2;
      return s;
    });
    List<String> newestTwo = runs.stream().sorted(Comparator.comparing(SchedulesIT::scheduledTime).reversed())
        .limit(2).map(c -> c.getMetadata().getName()).toList();
    await().atMost(TIMEOUT).until(() -> checkpointsOf("sim").size() == 2);
    await().atMost(TIMEOUT).until(() -> storedPrefixes().equals(prefixesOf(checkpointsOf("sim"))));
    assertThat(checkpointsOf("sim")).extracting(c -> c.getMetadata().getName())
        .containsExactlyInAnyOrderElementsOf(newestTwo);
    long runsWhenSuspended = schedule("sim").getStatus().runs;
    await("no run while suspended").during(Duration.ofSeconds(PERIOD)).atMost(TIMEOUT)
        .until(() -> schedule("sim").getStatus().runs == runsWhenSuspended);
    assertThat(schedule("sim").getStatus().phase).isEqualTo("Suspended");
    assertThat(checkpointsOf("sim")).hasSize(2);

    // a Restore of the schedule brings back its newest checkpoint
    counter.close();
    long killedAt = Workloads.count(out);
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName("sim").withNamespace(cluster.namespace()).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().scheduleRef = new ScheduleRef("sim");
    Restore restored = cluster.awaitRestore(cluster.client().resource(r).create(), RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cluster.afterTest(() -> Workloads.kill(pid));
    assertThat(restored.getStatus().checkpoint).isEqualTo(newestTwo.get(0));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) < killedAt);
    long resumed = Workloads.count(out);
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > resumed + 2);
  }

  @Test
  void forbidSkipsRunsWhileOneIsTakenAndReplaceReplacesIt() throws Exception {
    // A node with a NodeProfile but no agent: its checkpoints stay Pending, i.e. are being taken, for ever.
    String idle = cluster.node() + "-idle";
    NodeProfile profile = new NodeProfile();
    profile.setMetadata(new ObjectMetaBuilder().withName(idle).build());
    profile.setSpec(new NodeProfileSpec());
    // as every current agent: a deduplicating storage's Checkpoint is granted its namespace's chunk key
    profile.getSpec().grantKey = NodeKey.inWorkDir(cluster.dir().resolve(idle)).publicKey();
    cluster.client().resource(profile).create();
    cluster.afterTest(() -> cluster.client().resource(profile).delete());
    createSchedule("forbid", "@every 2s", idle, 4242, spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Forbid);
    createSchedule("replace", "@every 2s", idle, 4242, spec -> spec.concurrencyPolicy = ConcurrencyPolicy.Replace);

    await().atMost(TIMEOUT).until(() -> schedule("replace").getStatus() != null
        && schedule("replace").getStatus().runs >= 4 && schedule("forbid").getStatus().skipped >= 2);

    CheckpointSchedule forbid = schedule("forbid");
    assertThat(forbid.getStatus().runs).isEqualTo(1);
    assertThat(checkpointsOf("forbid")).singleElement()
        .satisfies(c -> assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Pending));
    await().atMost(TIMEOUT).until(() -> checkpointsOf("replace").stream().filter(c -> !c.isMarkedForDeletion()).count() == 1);
    CheckpointSchedule replace = schedule("replace");
    Checkpoint current = checkpointsOf("replace").stream().filter(c -> !c.isMarkedForDeletion()).findFirst().orElseThrow();
    assertThat(replace.getStatus().skipped).isZero();
    assertThat(scheduledTime(current)).isAfterOrEqualTo(Instant.parse(replace.getStatus().lastScheduleTime).minusSeconds(2));
  }

  @Test
  void aCordonedNodeTriggersOneCheckpointPerDrain() throws Exception {
    var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("drained.txt").toString()));
    cluster.client().resource(new NodeBuilder().withNewMetadata().withName(cluster.node()).endMetadata().build()).create();
    cluster.afterTest(() -> cluster.client().nodes().withName(cluster.node()).delete());
    createSchedule("drain", "0 0 1 1 *", cluster.node(), counter.pid(), spec -> {
      spec.triggers = new CheckpointScheduleSpec.Triggers();
      spec.triggers.onNodeDrain = true;
    });
    await().atMost(TIMEOUT).until(() -> schedule("drain").getStatus() != null);
    assertThat(checkpointsOf("drain")).isEmpty();

    cluster.client().nodes().withName(cluster.node()).edit(n -> new NodeBuilder(n).editOrNewSpec().withUnschedulable(true).endSpec().build());
    await().atMost(TIMEOUT).until(() -> completed("drain").size() == 1);
    // more of the same drain: a NoExecute taint, other changes to the node
    cluster.client().nodes().withName(cluster.node()).edit(n -> new NodeBuilder(n).editSpec()
        .addToTaints(new TaintBuilder().withKey("maintenance").withEffect("NoExecute").build()).endSpec()
        .editMetadata().addToLabels("drained", "yes").endMetadata().build());
    await("one checkpoint per drain").during(Duration.ofSeconds(2)).atMost(TIMEOUT)
        .until(() -> checkpointsOf("drain").size() == 1);
    assertThat(checkpointsOf("drain")).singleElement().satisfies(c ->
        assertThat(c.getMetadata().getLabels()).containsEntry(Labels.TRIGGER, Labels.TRIGGER_DRAIN));

    cluster.client().nodes().withName(cluster.node()).edit(n -> new NodeBuilder(n).editSpec().withUnschedulable(false).withTaints().endSpec().build());
    await().atMost(TIMEOUT).until(() -> schedule("drain").getStatus().drains.isEmpty());
    cluster.client().nodes().withName(cluster.node()).edit(n -> new NodeBuilder(n).editSpec()
        .addToTaints(new TaintBuilder().withKey("maintenance").withEffect("NoExecute").build()).endSpec().build());
    await().atMost(TIMEOUT).until(() -> completed("drain").size() == 2);
    assertThat(schedule("drain").getStatus().drainTriggered).isEqualTo(2);
    assertThat(schedule("drain").getStatus().runs).isZero();
  }

  @Test
  void aCheckpointDeletedWhileItIsTakenLeavesTheWorkloadRunningAndNoArchive() throws Exception {
    Path out = cluster.dir().resolve("memhog-count.txt");
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", "384", "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 1);
    CheckpointOptions stopAfter = new CheckpointOptions();
    stopAfter.leaveRunning = false; // the hardest case: the workload is stopped until its archive is stored
    Checkpoint c = cluster.createCheckpoint("deleted-midway", memhog.pid(), cluster.fsStorage(), stopAfter);
    await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(20)).until(() ->
        cluster.checkpoint("deleted-midway").getStatus() != null
            && cluster.checkpoint("deleted-midway").getStatus().phase == CheckpointPhase.Running);
    cluster.client().resource(c).delete();

    await().atMost(TIMEOUT).until(() -> cluster.checkpoint("deleted-midway") == null);
    String prefix = new ArchiveLayout(cluster.namespace(), "deleted-midway", c.getMetadata().getUid()).prefix();
    await().atMost(TIMEOUT).until(() -> listFs(prefix).isEmpty() && Workloads.isAlive(memhog.pid()));
    long now = Workloads.count(out);
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > now + 5);
    assertThat(Workloads.isAlive(memhog.pid())).isTrue();
  }

  @Test
  void checkpointsOfOneProcessAskedForAtOnceAreTakenOneAfterTheOther() throws Exception {
    Path out = cluster.dir().resolve("twice-count.txt");
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", "256", "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 1);
    Checkpoint first = cluster.createCheckpoint("first", memhog.pid(), cluster.fsStorage(), null);
    Checkpoint second = cluster.createCheckpoint("second", memhog.pid(), cluster.fsStorage(), null);
    Checkpoint one = cluster.awaitCheckpoint(first, CheckpointPhase.Completed);
    Checkpoint other = cluster.awaitCheckpoint(second, CheckpointPhase.Completed);
    // both were Running at once (the agent took them up together), yet their dumps did not overlap
    assertThat(Instant.parse(other.getStatus().startTime)).isBefore(Instant.parse(one.getStatus().completionTime));
  }

  @Test
  void theApiServerRefusesWhatTheSchemaForbids() {
    CheckpointSchedule both = new CheckpointSchedule();
    both.setMetadata(new ObjectMetaBuilder().withName("both").withNamespace(cluster.namespace()).build());
    both.setSpec(new CheckpointScheduleSpec());
    both.getSpec().schedule = "@daily";
    both.getSpec().checkpointTemplate = new CheckpointTemplate();
    both.getSpec().checkpointTemplate.target = CheckpointTarget.process(cluster.node(), 4242);
    both.getSpec().selector = new LabelSelector(null, Map.of("app", "sim"));
    assertThatThrownBy(() -> cluster.client().resource(both).create()).isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("set exactly one of checkpointTemplate (a fixed target) or selector (pods by label)");

    CheckpointSchedule neither = new CheckpointSchedule();
    neither.setMetadata(new ObjectMetaBuilder().withName("neither").withNamespace(cluster.namespace()).build());
    neither.setSpec(new CheckpointScheduleSpec());
    neither.getSpec().schedule = "@daily";
    neither.getSpec().containers = List.of("solver");
    assertThatThrownBy(() -> cluster.client().resource(neither).create()).isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("set exactly one of checkpointTemplate (a fixed target) or selector (pods by label)")
        .hasMessageContaining("containers only go with selector");

    both.getSpec().selector = null;
    both.getSpec().storage = "s3";
    assertThatThrownBy(() -> cluster.client().resource(both).create()).isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("storage goes with selector; with checkpointTemplate set checkpointTemplate.storage");

    both.getSpec().storage = null;
    both.getSpec().retention = new CheckpointScheduleSpec.Retention();
    both.getSpec().retention.keepLast = 0;
    both.getSpec().retention.maxAge = "a week";
    assertThatThrownBy(() -> cluster.client().resource(both).create()).isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("spec.retention.keepLast").hasMessageContaining("spec.retention.maxAge");

    Restore twoRefs = new Restore();
    twoRefs.setMetadata(new ObjectMetaBuilder().withName("two-refs").withNamespace(cluster.namespace()).build());
    twoRefs.setSpec(new RestoreSpec());
    twoRefs.getSpec().scheduleRef = new ScheduleRef("sim");
    twoRefs.getSpec().checkpointRef = new CheckpointRef("sim-20250310100000");
    assertThatThrownBy(() -> cluster.client().resource(twoRefs).create()).isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("set exactly one of checkpointRef (a Checkpoint) or scheduleRef");
  }

  /**
   * A schedule with leaveRunning: false ends its counter with its first checkpoint; the kernel then
   * gives the counter's PID to another process. The next run must not take it: the schedule pinned
   * the process its first checkpoint found, its Checkpoints carry that identity, and the run fails
   * ProcessChanged while the newcomer counts on, never frozen, dumped or ended.
   */
  @Test
  void aScheduleTakesOnlyTheProcessItsFirstCheckpointFound() throws Exception {
    Path first = cluster.dir().resolve("pinned-first-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", first.toString()));
    long pid = counter.pid();
    await().atMost(TIMEOUT).until(() -> Workloads.count(first) >= 3);
    createSchedule("pinned", "@every 8s", cluster.node(), pid, spec -> {
      spec.concurrencyPolicy = ConcurrencyPolicy.Forbid;
      spec.checkpointTemplate.options = new CheckpointOptions();
      spec.checkpointTemplate.options.leaveRunning = false;
    });
    await().atMost(TIMEOUT).until(() -> completed("pinned").size() == 1);
    assertThat(counter.launcher().waitFor(10, TimeUnit.SECONDS)).as("the checkpoint ended the counter").isTrue();
    var pinned = await().atMost(TIMEOUT).until(() -> schedule("pinned").getStatus().process, p -> p != null);
    assertThat(pinned.pid).isEqualTo((int) pid);
    assertThat(pinned.node).isEqualTo(cluster.node());

    Path second = cluster.dir().resolve("pinned-second-" + cluster.namespace() + ".txt");
    var newcomer = cluster.track(Workloads.startAt(pid, "counter", second.toString()));
    long newcomerStart = Workloads.startTicks(pid);
    Checkpoint refused = await().atMost(TIMEOUT).until(() -> checkpointsOf("pinned").stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.isTerminal())
        .filter(c -> c.getStatus().phase != CheckpointPhase.Completed).findFirst(), Optional::isPresent).get();
    assertThat(refused.getSpec().target.process.startTicks).isEqualTo(pinned.startTicks);
    cluster.assertFailure(refused.getStatus().reason, refused.getStatus().message, "ProcessChanged",
        "PID " + pid + " no longer names the process this checkpoint is of");
    assertThat(completed("pinned")).hasSize(1);
    assertThat(Workloads.startTicks(newcomer.pid())).as("never ended").isEqualTo(newcomerStart);
    long now = Workloads.count(second);
    await().atMost(TIMEOUT).until(() -> Workloads.count(second) > now + 3);
  }

  private void createSchedule(String name, String cron, String node, long pid, Consumer<CheckpointScheduleSpec> customize) {
    CheckpointSchedule s = new CheckpointSchedule();
    s.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(cluster.namespace()).build());
    s.setSpec(new CheckpointScheduleSpec());
    s.getSpec().schedule = cron;
    s.getSpec().checkpointTemplate = new CheckpointTemplate();
    s.getSpec().checkpointTemplate.target = CheckpointTarget.process(node, (int) pid);
    s.getSpec().checkpointTemplate.storage = cluster.fsStorage();
    customize.accept(s.getSpec());
    cluster.client().resource(s).create();
  }

  private CheckpointSchedule schedule(String name) {
    return cluster.client().resources(CheckpointSchedule.class).inNamespace(cluster.namespace()).withName(name).get();
  }

  private List<Checkpoint> checkpointsOf(String schedule) {
    return cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace()).withLabel(Labels.SCHEDULE, schedule).list()
        .getItems();
  }

  private List<Checkpoint> completed(String schedule) {
    return checkpointsOf(schedule).stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed).toList();
  }

  private static Instant scheduledTime(Checkpoint c) {
    return Instant.parse(c.getMetadata().getAnnotations().get(ScheduleCheckpoints.SCHEDULED_TIME));
  }

  private static Instant createdAt(Checkpoint c) {
    return Instant.parse(c.getMetadata().getCreationTimestamp());
  }

  private Set<String> prefixesOf(List<Checkpoint> checkpoints) {
    return checkpoints.stream().map(c -> new ArchiveLayout(cluster.namespace(), c.getMetadata().getName(),
        c.getMetadata().getUid()).prefix()).collect(Collectors.toSet());
  }

  /**
   * The checkpoint prefixes of this test's cluster.namespace() that hold objects in the filesystem
   * storage (not its packs, which no one checkpoint owns).
   */
  private Set<String> storedPrefixes() throws Exception {
    return listFs(cluster.namespace() + "/").stream()
        .flatMap(o -> ArchiveLayout.ofKey(o.key()).stream()).map(ArchiveLayout::prefix).collect(Collectors.toSet());
  }

  private List<StoredObject> listFs(String prefix) throws Exception {
    CheckpointStorage storage = cluster.client().resources(CheckpointStorage.class).withName(cluster.fsStorage()).get();
    try (ObjectStore store = new StorageBinding(cluster.client()).open(storage)) {
      return store.list(prefix);
    }
  }
}
