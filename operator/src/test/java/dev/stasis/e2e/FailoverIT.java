package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleStatus.FailoverRecord;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.kube.Labels;
import dev.stasis.testing.AgentProcess;
import dev.stasis.testing.ExtraAgents;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A node lost or drained while its workload runs, on real parts: node-a's agent is a process of its own,
 * SIGKILLed by its PID, so its NodeProfile's heartbeat goes stale (there is no Node object of that
 * name: it counts as gone); node-b's agent runs in this JVM. Both run this machine's CRIU and carry
 * the label {@code stasis.dev/test-run}, by which the failover's placement selects them.
 */
class FailoverIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();
  static final Duration AFTER = Duration.ofMinutes(1);

  static String nodeA;
  static String nodeB;
  /** A node that is drained: its Node object is cordoned and tainted NoExecute by the test. */
  static String nodeC;
  static ExtraAgents agents;

  @BeforeAll
  static void startNodesBAndC() {
    agents = ExtraAgents.of(cluster);
    nodeA = agents.name("a");
    nodeB = agents.name("b");
    nodeC = agents.name("c");
    agents.node("b", Set.of(ProcessTargetPolicy.ALL), Path.of("/"), agents.thisRun())
        .node("c", Set.of(ProcessTargetPolicy.ALL), Path.of("/"), Map.of())
        .start();
  }

  @AfterAll
  static void stopNodesBAndC() {
    if (agents != null) agents.close();
  }

  /**
   * A schedule checkpoints a counter on node-a every 10 s. node-a's agent is SIGKILLed: within
   * after + 30 s the counter runs on node-b from the newest checkpoint, once; node-a's agent,
   * started again, ends the old tree and leaves the new one alone, and exactly one copy counts.
   */
  @Test
  void aLostNodesWorkloadComesBackElsewhereOnceAndTheOldCopyIsFencedWhenTheNodeReturns() throws Exception {
    Path work = cluster.dir().resolve("work-a");
    Path log = cluster.dir().resolve("agent-a.log");
    AgentProcess agentA = AgentProcess.start(nodeA, work, TestControlPlane.kubeconfig(), log, nodeLabels());
    cluster.afterTest(agentA);
    Path count = cluster.dir().resolve("lost-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);
    createSchedule("keep", counter.pid());
    await().atMost(TIMEOUT).until(() -> completedOn(nodeA) > 0);

    agentA.kill(); // the node's agent is gone: its heartbeat goes stale
    long killedAt = System.nanoTime();
    FailoverRecord failover = await().atMost(AFTER.plusSeconds(30)).pollInterval(Duration.ofSeconds(1))
        .until(() -> failovers("keep"), list -> !list.isEmpty() && "Completed".equals(list.get(0).phase)).get(0);
    Duration took = Duration.ofNanos(System.nanoTime() - killedAt);
    Restore restore = cluster.restore(failover.restore);
    cluster.afterTest(() -> Workloads.kill(restore.getStatus().restoredPid));
    assertThat(failover.lostNode).isEqualTo(nodeA);
    assertThat(failover.node).isEqualTo(nodeB);
    assertThat(restore.getStatus().node).isEqualTo(nodeB);
    assertThat(restore.getStatus().phase).isEqualTo(RestorePhase.Completed);
    assertThat(restore.getSpec().placement.excludeNodes).containsExactly(nodeA);
    assertThat(restore.getMetadata().getLabels()).containsEntry(Labels.FAILOVER_FROM, nodeA);
    Checkpoint used = cluster.checkpoint(failover.checkpoint);
    assertThat(used.getStatus().node).isEqualTo(nodeA);
    assertThat(failover.lostWorkSeconds).as("the checkpoint's age").isBetween(0L, 120L);
    assertThat(events("keep")).contains("FailedOver", "FailoverRestored");
    // What Prometheus scrapes: the failover by result and reason, and the time from the loss to running again.
    String metrics = MetricsEndpoint.get(cluster.metricsPort(), "/metrics").body();
    assertThat(MetricsEndpoint.value(metrics, "stasis_failovers_total", "result=\"Completed\"", "reason=\"Restored\""))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    assertThat(MetricsEndpoint.value(metrics, "stasis_failover_down_time_seconds_count"))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    double down = MetricsEndpoint.value(metrics, "stasis_failover_down_time_seconds_max").orElseThrow();
    assertThat(down).as("from the last heartbeat: the loss lasted at least after").isGreaterThanOrEqualTo(AFTER.toSeconds());
    assertThat(MetricsEndpoint.value(metrics, "stasis_failover_down_time_seconds_bucket", "le=\"1800.0\""))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    int restoredPid = restore.getStatus().restoredPid;
    assertThat(Workloads.isAlive(restoredPid)).isTrue();

    // Once per loss: however long node-a stays lost, no second failover.
    await().during(Duration.ofSeconds(25)).atMost(Duration.ofSeconds(40)).until(() -> failovers("keep").size() == 1);
    // Meanwhile the old copy on node-a runs on: nobody is there to end it until its agent returns.
    assertThat(Workloads.isAlive(counter.pid())).as("the old copy, while node-a is lost").isTrue();

    AgentProcess again = AgentProcess.start(nodeA, work, TestControlPlane.kubeconfig(), log, nodeLabels());
    cluster.afterTest(again);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid()));
    assertThat(Workloads.isAlive(restoredPid)).as("the new copy is left alone").isTrue();
    await().atMost(TIMEOUT).until(() -> events(failover.restore).contains("Fenced"));
    long now = Workloads.count(count);
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > now + 10);
    await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(10))
        .until(() -> !Workloads.isAlive(counter.pid()) && Workloads.isAlive(restoredPid));

    // The schedule follows its target: later checkpoints are of the tree on node-b.
    await().atMost(TIMEOUT).until(() -> completedOn(nodeB) > 0);
    assertThat(failovers("keep")).hasSize(1);
    System.out.printf("failover: the workload ran again on node-b %d s after node-a's agent was killed"
        + " (after: %d s; %.0f s from its last heartbeat, as scraped); %d s of work lost%n", took.toSeconds(),
        AFTER.toSeconds(), down, failover.lostWorkSeconds);
  }

  /**
   * failover.onDrain: node-c is cordoned and tainted NoExecute (what kubectl drain and a node's
   * controller do); the schedule moves its target to node-b with a Migration before any eviction,
   * and takes its later checkpoints there.
   */
  @Test
  void aDrainedNodesTargetMovesToAnotherNode() throws Exception {
    Path count = cluster.dir().resolve("drained-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 30);
    CheckpointSchedule s = new CheckpointSchedule();
    s.setMetadata(new ObjectMetaBuilder().withName("drained").withNamespace(cluster.namespace()).build());
    s.setSpec(new CheckpointScheduleSpec());
    s.getSpec().schedule = "@every 1h";
    s.getSpec().checkpointTemplate = new CheckpointTemplate();
    s.getSpec().checkpointTemplate.target = CheckpointTarget.process(nodeC, (int) counter.pid());
    s.getSpec().checkpointTemplate.storage = cluster.fsStorage();
    s.getSpec().failover = new CheckpointScheduleSpec.Failover();
    s.getSpec().failover.onDrain = true;
    s.getSpec().failover.placement = new RestorePlacement();
    s.getSpec().failover.placement.nodeName = nodeB;
    cluster.client().resource(s).create();
    long before = Workloads.count(count);

    cluster.client().nodes().resource(new NodeBuilder().withNewMetadata().withName(nodeC).endMetadata()
        .withNewSpec().withUnschedulable(true).addNewTaint().withKey("node.kubernetes.io/unschedulable")
        .withEffect("NoExecute").endTaint().endSpec().build()).create();
    cluster.afterTest(() -> cluster.client().nodes().withName(nodeC).delete());

    Migration moved = await().atMost(TIMEOUT.multipliedBy(2)).until(() -> cluster.client().resources(Migration.class)
        .inNamespace(cluster.namespace()).withLabel(Labels.SCHEDULE, "drained").list().getItems(),
        list -> !list.isEmpty() && list.get(0).getStatus() != null && list.get(0).getStatus().phaseOrPending().isTerminal())
        .get(0);
    if (moved.getStatus().restoredPid != null) {
      cluster.afterTest(() -> Workloads.kill(moved.getStatus().restoredPid));
    }
    assertThat(moved.getStatus().phase).as("%s: %s", moved.getStatus().reason, moved.getStatus().message)
        .isEqualTo(MigrationPhase.Completed);
    assertThat(moved.getStatus().sourceNode).isEqualTo(nodeC);
    assertThat(moved.getStatus().node).isEqualTo(nodeB);
    assertThat(Workloads.isAlive(counter.pid())).as("the original on the drained node").isFalse();
    long restored = Workloads.count(count);
    assertThat(restored).as("counts on from the checkpoint").isGreaterThanOrEqualTo(before);
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > restored + 3);
    CheckpointSchedule followed = await().atMost(TIMEOUT).until(() -> cluster.client().resources(CheckpointSchedule.class)
        .inNamespace(cluster.namespace()).withName("drained").get(), now -> now.getStatus() != null
        && now.getStatus().failedOverTarget != null);
    assertThat(followed.getStatus().failedOverTarget.to.node).isEqualTo(nodeB);
    int restoredPid = moved.getStatus().restoredPid;
    assertThat(followed.getStatus().failedOverTarget.to.pid).isEqualTo(restoredPid);
    assertThat(moved.getStatus().restoredProcess.startTicks).as("node-b's agent recorded the restored root as it runs")
        .isEqualTo(Workloads.startTicks(restoredPid));
    assertThat(followed.getStatus().failedOverTarget.to.pinned()).as("followed as that process, not its PID")
        .hasValueSatisfying(p -> assertThat(p.sameProcessAs(moved.getStatus().restoredProcess)).isTrue());
    assertThat(followed.getStatus().drainTriggered).isEqualTo(1);
    // The target left the drained node: however long node-c stays drained, it is not moved again.
    await().during(Duration.ofSeconds(15)).atMost(Duration.ofSeconds(30)).until(() -> cluster.client()
        .resources(Migration.class).inNamespace(cluster.namespace()).withLabel(Labels.SCHEDULE, "drained").list()
        .getItems().size() == 1);
    assertThat(events("drained")).contains("NodeDraining", "TargetMoved");
    System.out.printf("drain: moved to node-b, the workload did no work for %d s%n", moved.getStatus().frozenToRunningSeconds);

    // The restored tree ends and the kernel gives its PID to a newcomer: the schedule's next run must
    // not take the newcomer for the tree it followed (ProcessChanged), and leaves it running.
    Workloads.kill(restoredPid);
    Path second = cluster.dir().resolve("drained-newcomer-" + cluster.namespace() + ".txt");
    var newcomer = cluster.track(Workloads.startAt(restoredPid, "counter", second.toString()));
    long newcomerStart = Workloads.startTicks(newcomer.pid());
    cluster.client().resources(CheckpointSchedule.class).inNamespace(cluster.namespace()).withName("drained")
        .edit(now -> {
          now.getSpec().schedule = "@every 5s";
          return now;
        });
    Checkpoint refused = await().atMost(TIMEOUT).until(() -> cluster.client().resources(Checkpoint.class)
        .inNamespace(cluster.namespace()).withLabel(Labels.SCHEDULE, "drained").list().getItems().stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Failed).findFirst(),
        java.util.Optional::isPresent).get();
    assertThat(refused.getSpec().target.process.node).isEqualTo(nodeB);
    assertThat(refused.getSpec().target.process.pid).isEqualTo(restoredPid);
    cluster.assertFailure(refused.getStatus().reason, refused.getStatus().message, "ProcessChanged",
        "PID " + restoredPid + " no longer names the process this checkpoint is of");
    assertThat(Workloads.startTicks(newcomer.pid())).as("the newcomer was never ended").isEqualTo(newcomerStart);
    long counted = Workloads.count(second);
    await().atMost(TIMEOUT).until(() -> Workloads.count(second) > counted + 3);
  }

  private static String nodeLabels() {
    return "--node-labels=stasis.dev/test-run=" + cluster.node();
  }

  private static void createSchedule(String name, long pid) {
    CheckpointSchedule s = new CheckpointSchedule();
    s.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(cluster.namespace()).build());
    s.setSpec(new CheckpointScheduleSpec());
    s.getSpec().schedule = "@every 10s";
    s.getSpec().checkpointTemplate = new CheckpointTemplate();
    s.getSpec().checkpointTemplate.target = CheckpointTarget.process(nodeA, (int) pid);
    s.getSpec().checkpointTemplate.storage = cluster.fsStorage();
    s.getSpec().failover = new CheckpointScheduleSpec.Failover();
    s.getSpec().failover.onNodeLost = new CheckpointScheduleSpec.NodeLost();
    s.getSpec().failover.onNodeLost.after = AFTER.toSeconds() + "s";
    s.getSpec().failover.placement = new RestorePlacement();
    s.getSpec().failover.placement.nodeSelector = agents.thisRun();
    cluster.client().resource(s).create();
  }

  private static long completedOn(String node) {
    return cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace()).list().getItems().stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed)
        .filter(c -> node.equals(c.getStatus().node)).count();
  }

  private static List<FailoverRecord> failovers(String schedule) {
    CheckpointSchedule s = cluster.client().resources(CheckpointSchedule.class).inNamespace(cluster.namespace())
        .withName(schedule).get();
    return s.getStatus() == null ? List.of() : s.getStatus().failovers;
  }

  private static List<String> events(String name) {
    return cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems().stream()
        .filter(e -> name.equals(e.getInvolvedObject().getName())).map(Event::getReason).toList();
  }
}
