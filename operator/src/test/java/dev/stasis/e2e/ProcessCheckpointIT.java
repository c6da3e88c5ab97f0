package dev.stasis.e2e;

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
class ProcessCheckpointIT extends EndToEndTest {
  @ParameterizedTest(name = "storage {0}")
  @ValueSource(strings = {"s3", "filesystem"})
  void counterCarriesOnFromTheCheckpointedValue(String backend) throws Exception {
    String storage = backend.equals("s3") ? s3Storage : fsStorage;
    Path out = shared.resolve(backend + "-count.txt");
    var counter = track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 5);

    long before = count(out);
    Checkpoint done = awaitCheckpoint(createCheckpoint("counter-" + backend, counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after = count(out);
    assertThat(done.getStatus().archive.sha256).hasSize(64);
    assertThat(done.getStatus().archive.storedBytes).isPositive();
    assertThat(done.getStatus().archive.uri).startsWith(backend.equals("s3") ? "s3://checkpoints/" : "file://");
    assertThat(done.getStatus().stats.frozenTimeMicros).isPositive();
    assertThat(done.getStatus().stats.pagesWritten).isPositive();
    assertThat(done.getStatus().conditions).anyMatch(c -> c.getType().equals("Complete") && c.getStatus().equals("True"));
    assertThat(Workloads.isAlive(counter.pid())).as("leaveRunning defaults to true").isTrue();
    new Kubectl(TestControlPlane.kubeconfig())
        .run("wait", "--for=condition=Complete", "ckpt/counter-" + backend, "-n", namespace, "--timeout=10s").ok();

    Thread.sleep(3000); // the original runs on ~30 counts past the checkpoint: slack for a slow observer
    counter.close();
    long killedAt = count(out);

    Restore restored = awaitRestore(createRestore("counter-" + backend, "counter-" + backend), RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cleanup.add(() -> Workloads.kill(pid));
    assertThat(restored.getStatus().node).isEqualTo(NODE);
    assertThat(restored.getStatus().processState).isEqualTo("Running");

    // The restored counter rewrites the file from the value it had at the checkpoint, not 0 and not killedAt.
    await().atMost(TIMEOUT).until(() -> { long now = count(out); return now >= 0 && now < killedAt; });
    long resumed = count(out);
    assertThat(resumed).isBetween(before, after + 3);
    await().atMost(TIMEOUT).until(() -> count(out) > resumed + 3);

    Workloads.kill(pid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(restore("counter-" + backend).getStatus().processState));
    assertThat(Workloads.isAlive(pid)).as("no zombie is left").isFalse();
  }

  @Test
  void deletingACheckpointDeletesItsArchive() throws Exception {
    var counter = track(Workloads.startInPidNamespace("counter", shared.resolve("del.txt").toString()));
    Checkpoint done = awaitCheckpoint(createCheckpoint("to-delete", counter.pid(), fsStorage, null), CheckpointPhase.Completed);
    Path folder = fsRoot.resolve(namespace).resolve("to-delete-" + done.getMetadata().getUid());
    assertThat(folder.resolve("manifest.json")).exists();
    client.resource(done).delete();
    await().atMost(TIMEOUT).until(() -> !Files.exists(folder.resolve("manifest.json")));
    await().atMost(TIMEOUT).until(() -> checkpoint("to-delete") == null);
  }

  @Test
  void processTreeWithChildrenResumesWhole() throws Exception {
    Path dir = Files.createDirectories(shared.resolve("tree-" + namespace));
    var tree = track(Workloads.startInPidNamespace("forktree", dir.toString(), "3"));
    List<Path> files = List.of(dir.resolve("count.0"), dir.resolve("count.1"), dir.resolve("count.2"), dir.resolve("count.3"));
    await().atMost(TIMEOUT).until(() -> files.stream().allMatch(f -> count(f) >= 3));
    awaitCheckpoint(createCheckpoint("tree", tree.pid(), fsStorage, null), CheckpointPhase.Completed);
    tree.close();
    Thread.sleep(300);
    long[] frozen = files.stream().mapToLong(ProcessCheckpointIT::count).toArray();

    Restore restored = awaitRestore(createRestore("tree", "tree"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    for (int i = 0; i < files.size(); i++) {
      Path f = files.get(i);
      long was = frozen[i];
      await("process " + i + " counts again").atMost(TIMEOUT).until(() -> count(f) != was);
    }
  }

  @Test
  void processWithAnOpenFileKeepsAppending() throws Exception {
    Path log = shared.resolve("open-" + namespace + ".log");
    var writer = track(Workloads.startInPidNamespace("openfile", log.toString()));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 3);
    awaitCheckpoint(createCheckpoint("openfile", writer.pid(), s3Storage, null), CheckpointPhase.Completed);
    writer.close();
    Thread.sleep(300);
    long linesAtKill = lines(log);

    Restore restored = awaitRestore(createRestore("openfile", "openfile"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> lines(log) > linesAtKill + 3);
  }

  /**
   * A log the job appends to (O_APPEND: CRIU does not hold it to a size), the job stopped at the
   * checkpoint: restored, it appends on from where it stopped, no line missing, none twice.
   */
  @Test
  void aLogAppendingJobStoppedAtTheCheckpointAppendsOnWithoutAGapOrARepeat() throws Exception {
    Path log = shared.resolve("appending-" + namespace + ".log");
    var writer = track(Workloads.startInPidNamespace("openfile", log.toString()));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    awaitCheckpoint(createCheckpoint("appending", writer.pid(), fsStorage, options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(writer.pid()));
    long linesAtStop = lines(log);

    Restore restored = awaitRestore(createRestore("appending", "appending"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> lines(log) > linesAtStop + 5);
    Workloads.kill(restored.getStatus().restoredPid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(restore("appending").getStatus().processState));
    List<String> written = Files.readAllLines(log);
    assertThat(written).isEqualTo(LongStream.rangeClosed(1, written.size()).mapToObj(Long::toString).toList());
  }

  /** A UDP client and server on one host (src/test/workloads/udppair.c), stopped at the checkpoint: restored, they count on. */
  @Test
  void aUdpPairStoppedAtTheCheckpointCountsOnAfterTheRestore() throws Exception {
    Path out = shared.resolve("udp-" + namespace + ".txt");
    var pair = track(Workloads.startInPidNamespace("udppair", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    awaitCheckpoint(createCheckpoint("udp", pair.pid(), fsStorage, options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(pair.pid()));
    long stoppedAt = count(out);

    Restore restored = awaitRestore(createRestore("udp", "udp"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> count(out) > stoppedAt + 5);
  }

  @Test
  void leaveRunningFalseEndsTheProcessOnlyAfterTheArchiveIsStored() throws Exception {
    Path out = shared.resolve("stop-" + namespace + ".txt");
    var counter = track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    Checkpoint done = awaitCheckpoint(createCheckpoint("stop", counter.pid(), s3Storage, options), CheckpointPhase.Completed);
    assertThat(done.getStatus().archive.sha256).hasSize(64);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid()));
    long stoppedAt = count(out);

    Restore restored = awaitRestore(createRestore("stop", "stop"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> count(out) > stoppedAt + 2);
  }

}
