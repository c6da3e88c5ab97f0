package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Migration;
import dev.stasis.api.MigrationPhase;
import dev.stasis.api.MigrationRecovery;
import dev.stasis.api.MigrationSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePlacement;
import dev.stasis.testing.ExtraAgents;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Migrations on real parts: agents on this machine posing as nodes, each doing its own node's work
 * with real CRIU. node-a and node-b are ordinary nodes of this test run (label {@code
 * stasis.dev/test-run}: Migrations select them by it, never nodes of other test classes); node-c's
 * agent allows no namespace to checkpoint host processes; node-d sees the machine's files under an
 * empty folder (its --host-root), so every pre-flight there finds the workload's files missing.
 */
class MigrationIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  static String nodeA;
  static String nodeB;
  static String nodeC;
  static String nodeD;
  static ExtraAgents agents;

  @BeforeAll
  static void startAgents() throws Exception {
    agents = ExtraAgents.of(cluster);
    nodeA = agents.name("a");
    nodeB = agents.name("b");
    nodeC = agents.name("c");
    nodeD = agents.name("d");
    Path emptyRoot = Files.createDirectories(cluster.dir().resolve("empty-root"));
    agents.node("a", Set.of(ProcessTargetPolicy.ALL), Path.of("/"), agents.thisRun())
        .node("b", Set.of(ProcessTargetPolicy.ALL), Path.of("/"), agents.thisRun())
        .node("c", Set.of(), Path.of("/"), Map.of())
        .node("d", Set.of(ProcessTargetPolicy.ALL), emptyRoot, Map.of("stasis.dev/test-run", nodeD))
        .start();
  }

  @AfterAll
  static void stopAgents() {
    if (agents != null) agents.close();
  }

  /**
   * A counter in its own PID namespace moves from node-a to node-b: its count goes on from the
   * checkpoint on node-b, the original is gone, and exactly one copy counts.
   */
  @Test
  void aCountingProcessMovesToAnotherNodeAndCountsOnFromItsCheckpoint() throws Exception {
    Path count = cluster.dir().resolve("move-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 30); // 3 s: a fresh start would count from 1

    long before = Workloads.count(count);
    Migration done = awaitEnd(create("move", nodeA, counter.pid(), s -> {}), MigrationPhase.Completed);
    cluster.afterTest(() -> Workloads.kill(done.getStatus().restoredPid));

    assertThat(done.getStatus().sourceNode).isEqualTo(nodeA);
    assertThat(done.getStatus().node).isEqualTo(nodeB);
    assertThat(done.getStatus().checkpoint).isEqualTo("move");
    assertThat(done.getStatus().restore).isEqualTo("move");
    assertThat(done.getStatus().recovery).isNull();
    assertThat(done.getStatus().frozenToRunningSeconds).isNotNull().isBetween(0L, 60L);
    assertThat(done.getStatus().totalSeconds).isGreaterThanOrEqualTo(done.getStatus().frozenToRunningSeconds);
    Restore restore = cluster.restore("move");
    assertThat(restore.getStatus().node).isEqualTo(nodeB);
    assertThat(restore.getStatus().restoredPid).isEqualTo(done.getStatus().restoredPid);
    assertThat(events("move")).anySatisfy(e -> {
      assertThat(e.getReason()).isEqualTo("Restored");
      assertThat(e.getReportingInstance()).as("restored by node-b's agent").isEqualTo(nodeB);
    });

    // The source is gone: the checkpoint ended it once its archive was stored.
    assertThat(Workloads.isAlive(counter.pid())).as("the original on node-a").isFalse();
    Checkpoint checkpoint = cluster.checkpoint("move");
    assertThat(checkpoint.getSpec().options.leaveRunning).isFalse();
    // It counts on from the checkpoint, taken after `before` (a fresh start would count from 0), one
    // copy only: the restored tree is the one process left counting.
    long restored = Workloads.count(count);
    assertThat(restored).as("counts on from the checkpoint").isGreaterThanOrEqualTo(before);
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > restored + 3);
    assertThat(Workloads.isAlive(done.getStatus().restoredPid)).isTrue();
    assertThat(Workloads.isAlive(counter.pid())).isFalse();
    String metrics = MetricsEndpoint.get(cluster.metricsPort(), "/metrics").body();
    assertThat(MetricsEndpoint.value(metrics, "stasis_migrations_total", "result=\"Completed\"", "reason=\"Migrated\""))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    assertThat(MetricsEndpoint.value(metrics, "stasis_migration_frozen_to_running_seconds_count", "result=\"Completed\""))
        .hasValueSatisfying(n -> assertThat(n).isGreaterThanOrEqualTo(1.0));
    System.out.printf("migration: %ds in all, the workload did no work for %ds%n", done.getStatus().totalSeconds,
        done.getStatus().frozenToRunningSeconds);
  }

  /** No other node can run it: refused before anything is stopped, every node's reason given. */
  @Test
  void noCompatibleNodeIsRefusedWithTheReasonsBeforeAnythingIsStopped() throws Exception {
    Path count = cluster.dir().resolve("nowhere-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);

    Migration refused = awaitEnd(create("nowhere", nodeA, counter.pid(), s -> {
      s.placement.nodeSelector = null;
      s.placement.nodeName = cluster.oldCriuNode();
    }),
        MigrationPhase.Failed);
    assertThat(refused.getStatus().reason).isEqualTo("NoCompatibleNode");
    assertThat(refused.getStatus().message).startsWith("0/1 nodes can run this checkpoint: " + cluster.oldCriuNode()
        + " CRIU 3.17.1 < ").contains("Nothing was stopped: the workload runs on where it is");
    assertThat(refused.getStatus().placement.rejected).singleElement()
        .satisfies(r -> assertThat(r.node).isEqualTo(cluster.oldCriuNode()));
    assertThat(refused.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(cluster.checkpoint("nowhere")).as("nothing was checkpointed").isNull();
    assertCounting(count);
    cluster.assertFailure(refused.getStatus().reason, refused.getStatus().message, "NoCompatibleNode", "0/1 nodes");
  }

  /** node-c's agent lets no namespace checkpoint this machine's processes: the workload stays where it is, untouched. */
  @Test
  void aTargetTheNamespaceMayNotCheckpointIsNotMoved() throws Exception {
    Path count = cluster.dir().resolve("forbidden-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);

    Migration failed = awaitEnd(create("forbidden", nodeC, counter.pid(), s -> {}), MigrationPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("ProcessTargetNotAllowed");
    assertThat(failed.getStatus().message).contains("the checkpoint failed", "runs on on node " + nodeC);
    assertThat(failed.getStatus().recovery).isEqualTo(MigrationRecovery.SourceRunning);
    assertThat(failed.getStatus().restore).isNull();
    assertCounting(count);
  }

  /**
   * The restore elsewhere fails after the workload was ended (node-d's pre-flight finds its files
   * missing): the workload is restored on its source node, and counts on there.
   */
  @Test
  void whenTheRestoreElsewhereFailsTheWorkloadComesBackOnItsSource() throws Exception {
    Path count = cluster.dir().resolve("back-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);

    Migration back = awaitEnd(create("back", nodeA, counter.pid(), s -> s.placement.nodeSelector =
        Map.of("stasis.dev/test-run", cluster.node() + "-d")), MigrationPhase.Failed);
    Integer pid = back.getStatus().restoredPid;
    if (pid != null) {
      cluster.afterTest(() -> Workloads.kill(pid));
    }
    assertThat(back.getStatus().reason).as(back.getStatus().message).isEqualTo("PreflightPathMissing");
    assertThat(back.getStatus().recovery).isEqualTo(MigrationRecovery.RestoredOnSource);
    assertThat(back.getStatus().node).isEqualTo(nodeA);
    assertThat(back.getStatus().sourceRestore).isEqualTo("back-source");
    assertThat(back.getStatus().message).contains("the restore elsewhere failed", "it runs again on node " + nodeA);
    assertThat(cluster.restore("back").getStatus().node).isEqualTo(nodeD);
    assertThat(cluster.restore("back-source").getStatus().node).isEqualTo(nodeA);
    assertThat(Workloads.isAlive(counter.pid())).as("the original was ended with the checkpoint").isFalse();
    assertThat(pid).isNotNull();
    assertCounting(count);
  }

  private static Migration create(String name, String node, long pid, Consumer<MigrationSpec> customize) {
    Migration m = new Migration();
    m.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(cluster.namespace()).build());
    m.setSpec(new MigrationSpec(CheckpointTarget.process(node, (int) pid)));
    m.getSpec().storage = cluster.fsStorage();
    m.getSpec().placement = new RestorePlacement();
    m.getSpec().placement.nodeSelector = agents.thisRun();
    customize.accept(m.getSpec());
    return cluster.client().resource(m).create();
  }

  private static Migration awaitEnd(Migration m, MigrationPhase phase) {
    var migrations = cluster.client().resources(Migration.class).inNamespace(cluster.namespace())
        .withName(m.getMetadata().getName());
    Migration done = await().atMost(TIMEOUT.multipliedBy(2)).until(migrations::get,
        now -> now.getStatus() != null && now.getStatus().phaseOrPending().isTerminal());
    assertThat(done.getStatus().phase).as("%s: %s", done.getStatus().reason, done.getStatus().message).isEqualTo(phase);
    return done;
  }

  private static List<Event> events(String name) {
    return cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems().stream()
        .filter(e -> name.equals(e.getInvolvedObject().getName())).toList();
  }

  /** Running, not stopped or frozen: its count goes on. */
  private static void assertCounting(Path count) {
    long now = Workloads.count(count);
    await().atMost(Duration.ofSeconds(15)).until(() -> Workloads.count(count) > now + 2);
  }
}
