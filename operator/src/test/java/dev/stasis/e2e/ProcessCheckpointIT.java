package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The whole path on real parts: the API server, the operator and an agent, real CRIU on real
 * processes in their own PID namespaces, and both storage backends (S3 via s3proxy, filesystem).
 */
class ProcessCheckpointIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  @ParameterizedTest(name = "storage {0}")
  @ValueSource(strings = {"s3", "filesystem"})
  void counterCarriesOnFromTheCheckpointedValue(String backend) throws Exception {
    String storage = backend.equals("s3") ? cluster.s3Storage() : cluster.fsStorage();
    Path out = cluster.dir().resolve(backend + "-count.txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 5);

    long before = Workloads.count(out);
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("counter-" + backend, counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after = Workloads.count(out);
    assertThat(done.getStatus().archive.sha256).hasSize(64);
    assertThat(done.getStatus().archive.storedBytes).isPositive();
    assertThat(done.getStatus().archive.uri).startsWith(backend.equals("s3") ? "s3://checkpoints/" : "file://");
    assertThat(done.getStatus().stats.frozenTimeMicros).isPositive();
    assertThat(done.getStatus().stats.pagesWritten).isPositive();
    assertThat(done.getStatus().conditions).anyMatch(c -> c.getType().equals("Complete") && c.getStatus().equals("True"));
    assertThat(Workloads.isAlive(counter.pid())).as("leaveRunning defaults to true").isTrue();
    new Kubectl(TestControlPlane.kubeconfig())
        .run("wait", "--for=condition=Complete", "ckpt/counter-" + backend, "-n", cluster.namespace(), "--timeout=10s").ok();

    // The original counts on well past the checkpoint, so that the restored count is told from it.
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > after + 30);
    counter.close();
    long killedAt = Workloads.count(out);

    Restore restored = cluster.awaitRestore(cluster.createRestore("counter-" + backend, "counter-" + backend), RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cluster.afterTest(() -> Workloads.kill(pid));
    assertThat(restored.getStatus().node).isEqualTo(cluster.node());
    assertThat(restored.getStatus().processState).isEqualTo("Running");

    // The restored counter rewrites the file from the value it had at the checkpoint, not 0 and not killedAt.
    await().atMost(TIMEOUT).until(() -> { long now = Workloads.count(out); return now >= 0 && now < killedAt; });
    long resumed = Workloads.count(out);
    assertThat(resumed).isBetween(before, after + 3);
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > resumed + 3);

    Workloads.kill(pid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(cluster.restore("counter-" + backend).getStatus().processState));
    assertThat(Workloads.isAlive(pid)).as("no zombie is left").isFalse();
  }

  @Test
  void deletingACheckpointDeletesItsArchive() throws Exception {
    var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("del.txt").toString()));
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("to-delete", counter.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    Path folder = cluster.fsRoot().resolve(cluster.namespace()).resolve("to-delete-" + done.getMetadata().getUid());
    assertThat(folder.resolve("manifest.json")).exists();
    cluster.client().resource(done).delete();
    await().atMost(TIMEOUT).until(() -> !Files.exists(folder.resolve("manifest.json")));
    await().atMost(TIMEOUT).until(() -> cluster.checkpoint("to-delete") == null);
  }

  @Test
  void processTreeWithChildrenResumesWhole() throws Exception {
    Path dir = Files.createDirectories(cluster.dir().resolve("tree-" + cluster.namespace()));
    var tree = cluster.track(Workloads.startInPidNamespace("forktree", dir.toString(), "3"));
    List<Path> files = List.of(dir.resolve("count.0"), dir.resolve("count.1"), dir.resolve("count.2"), dir.resolve("count.3"));
    await().atMost(TIMEOUT).until(() -> files.stream().allMatch(f -> Workloads.count(f) >= 3));
    cluster.awaitCheckpoint(cluster.createCheckpoint("tree", tree.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    tree.close();
    List<Long> frozen = Workloads.settled(() -> files.stream().map(Workloads::count).toList());

    Restore restored = cluster.awaitRestore(cluster.createRestore("tree", "tree"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    for (int i = 0; i < files.size(); i++) {
      Path f = files.get(i);
      long was = frozen.get(i);
      await("process " + i + " counts again").atMost(TIMEOUT).until(() -> Workloads.count(f) != was);
    }
  }

  @Test
  void processWithAnOpenFileKeepsAppending() throws Exception {
    Path log = cluster.dir().resolve("open-" + cluster.namespace() + ".log");
    var writer = cluster.track(Workloads.startInPidNamespace("openfile", log.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 3);
    cluster.awaitCheckpoint(cluster.createCheckpoint("openfile", writer.pid(), cluster.s3Storage(), null), CheckpointPhase.Completed);
    writer.close();
    long linesAtKill = Workloads.settled(() -> Workloads.lines(log));

    Restore restored = cluster.awaitRestore(cluster.createRestore("openfile", "openfile"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) > linesAtKill + 3);
  }

  /**
   * A log the job appends to (O_APPEND: CRIU does not hold it to a size), the job stopped at the
   * checkpoint: restored, it appends on from where it stopped, no line missing, none twice.
   */
  @Test
  void aLogAppendingJobStoppedAtTheCheckpointAppendsOnWithoutAGapOrARepeat() throws Exception {
    Path log = cluster.dir().resolve("appending-" + cluster.namespace() + ".log");
    var writer = cluster.track(Workloads.startInPidNamespace("openfile", log.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    cluster.awaitCheckpoint(cluster.createCheckpoint("appending", writer.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(writer.pid()));
    long linesAtStop = Workloads.lines(log);

    Restore restored = cluster.awaitRestore(cluster.createRestore("appending", "appending"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) > linesAtStop + 5);
    Workloads.kill(restored.getStatus().restoredPid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(cluster.restore("appending").getStatus().processState));
    List<String> written = Files.readAllLines(log);
    assertThat(written).isEqualTo(LongStream.rangeClosed(1, written.size()).mapToObj(Long::toString).toList());
  }

  /** A UDP client and server on one host (src/test/workloads/udppair.c), stopped at the checkpoint: restored, they count on. */
  @Test
  void aUdpPairStoppedAtTheCheckpointCountsOnAfterTheRestore() throws Exception {
    Path out = cluster.dir().resolve("udp-" + cluster.namespace() + ".txt");
    var pair = cluster.track(Workloads.startInPidNamespace("udppair", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    cluster.awaitCheckpoint(cluster.createCheckpoint("udp", pair.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(pair.pid()));
    long stoppedAt = Workloads.count(out);

    Restore restored = cluster.awaitRestore(cluster.createRestore("udp", "udp"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > stoppedAt + 5);
  }

  @Test
  void leaveRunningFalseEndsTheProcessOnlyAfterTheArchiveIsStored() throws Exception {
    Path out = cluster.dir().resolve("stop-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("stop", counter.pid(), cluster.s3Storage(), options), CheckpointPhase.Completed);
    assertThat(done.getStatus().archive.sha256).hasSize(64);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid()));
    long stoppedAt = Workloads.count(out);

    Restore restored = cluster.awaitRestore(cluster.createRestore("stop", "stop"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > stoppedAt + 2);
  }

}
