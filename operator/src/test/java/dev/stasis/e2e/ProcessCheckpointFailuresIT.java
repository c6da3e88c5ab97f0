package dev.stasis.e2e;

import dev.stasis.testing.Ports;
import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.storage.ObjectStore;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Bad input and faults on real parts. Each ends in Failed with a reason that says what to do and a
 * Warning Event, and never harms the workload.
 */
class ProcessCheckpointFailuresIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();


  @Test
  void pidThatDoesNotExist() {
    Checkpoint c = cluster.awaitCheckpoint(cluster.createCheckpoint("nopid", Workloads.unusedPid(), cluster.fsStorage(), null), CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "ProcessNotFound", "no process with PID");
  }

  @Test
  void theAgentItselfIsNotAllowed() {
    long self = ProcessHandle.current().pid();
    Checkpoint c = cluster.awaitCheckpoint(cluster.createCheckpoint("self", self, cluster.fsStorage(), null), CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "PidNotAllowed", "the Stasis agent itself");
  }

  /** Without its own session, a cluster.namespace() init cannot be dumped: CRIU says why, and the tail is kept. */
  @Test
  void criuDumpFailureCarriesCriusOwnWords() throws Exception {
    Process launcher = new ProcessBuilder("setsid", "unshare", "--pid", "--fork",
        Workloads.binary("counter").toString(), cluster.dir().resolve("nosid-" + cluster.namespace()).toString())
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectErrorStream(true).start();
    long inner = await().atMost(TIMEOUT).until(() -> Workloads.children(launcher.pid()), l -> !l.isEmpty()).get(0);
    cluster.afterTest(() -> {
      Workloads.kill(inner);
      launcher.waitFor();
    });
    Checkpoint c = cluster.awaitCheckpoint(cluster.createCheckpoint("nosid", inner, cluster.fsStorage(), null), CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "CriuDumpFailed",
        "A session leader of " + inner + "(1) is outside of its pid namespace");
    assertThat(c.getStatus().criuLogTail).contains("Dumping FAILED");
    assertThat(Workloads.isAlive(inner)).isTrue();
  }

  @Test
  void criuMissingOnTheNode() throws Exception {
    var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("nocriu.txt").toString()));
    Checkpoint c = cluster.awaitCheckpoint(cluster.createCheckpoint("nocriu", cluster.noCriuNode(), counter.pid(), cluster.fsStorage(), null),
        CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "CriuMissing", "CRIU is not installed");
    assertThat(Workloads.isAlive(counter.pid())).isTrue();
  }

  @Test
  void criuTooOldOnTheNode() throws Exception {
    var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("oldcriu.txt").toString()));
    Checkpoint c = cluster.awaitCheckpoint(cluster.createCheckpoint("oldcriu", cluster.oldCriuNode(), counter.pid(), cluster.fsStorage(), null),
        CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "CriuTooOld", "CRIU 3.17.1");
  }

  /** With backoffLimit 0 at once; FaultMatrixIT.storageDownWhenTheCheckpointIsDue waits for the storage instead. */
  @Test
  void unreachableStorageIsReportedAndRefused() throws Exception {
    String name = "down-" + cluster.node();
    cluster.createS3Storage(name, "http://127.0.0.1:" + Ports.closed(), "checkpoints");
    await().atMost(TIMEOUT).until(() -> {
      CheckpointStorage s = cluster.client().resources(CheckpointStorage.class).withName(name).get();
      return s.getStatus() != null && "Unavailable".equals(s.getStatus().phase);
    });
    assertThat(cluster.client().resources(CheckpointStorage.class).withName(name).get().getStatus().message)
        .contains("127.0.0.1");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("down.txt").toString()));
    Checkpoint down = new Checkpoint();
    down.setMetadata(new ObjectMetaBuilder().withName("down").withNamespace(cluster.namespace()).build());
    down.setSpec(new CheckpointSpec(CheckpointTarget.process(cluster.node(), (int) counter.pid())));
    down.getSpec().storage = name;
    down.getSpec().backoffLimit = 0;
    Checkpoint c = cluster.awaitCheckpoint(cluster.client().resource(down).create(), CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "StorageUnavailable", "is unavailable");
  }

  /**
   * leaveRunning: false and the archive cannot be stored, in each of two attempts (backoffLimit 1):
   * the workload, a tree of four processes, is resumed whole after each (by the CRIU that held it
   * frozen while the agent tried to store it) and each of them must go on counting.
   */
  @Test
  void storageFailingDuringUploadNeverEndsTheWorkload() throws Exception {
    Path dir = Files.createDirectories(cluster.dir().resolve("upload-fails-" + cluster.namespace()));
    var tree = cluster.track(Workloads.startInPidNamespace("forktree", dir.toString(), "3"));
    List<Path> files = List.of(dir.resolve("count.0"), dir.resolve("count.1"), dir.resolve("count.2"), dir.resolve("count.3"));
    await().atMost(TIMEOUT).until(() -> files.stream().allMatch(f -> Workloads.count(f) >= 3));
    Files.writeString(cluster.fsRoot().resolve(cluster.namespace()), "a file where the namespace's folder should be");
    Checkpoint twice = new Checkpoint();
    twice.setMetadata(new ObjectMetaBuilder().withName("upload-fails").withNamespace(cluster.namespace()).build());
    twice.setSpec(new CheckpointSpec(CheckpointTarget.process(cluster.node(), (int) tree.pid())));
    twice.getSpec().storage = cluster.fsStorage();
    twice.getSpec().options = new CheckpointOptions();
    twice.getSpec().options.leaveRunning = false;
    twice.getSpec().backoffLimit = 1;
    Checkpoint c = cluster.awaitCheckpoint(cluster.client().resource(twice).create(), CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "StorageFailed", "the workload was not ended");
    assertThat(c.getStatus().message).startsWith("failed after 2 attempts");
    assertThat(c.getStatus().attempts).isEqualTo(2);
    assertThat(c.getStatus().archive).isNull();
    for (Path f : files) {
      long after = Workloads.count(f);
      await(f.getFileName() + " counts on").atMost(TIMEOUT).until(() -> Workloads.count(f) > after + 3);
    }
  }

  /**
   * The checkpoint's first attempt found a counter under the PID and could not store it; before its
   * retry the counter ends and the kernel gives its PID to another process. The retry refuses that
   * process: ProcessChanged, not retried, and the newcomer is never frozen, dumped or ended
   * (leaveRunning: false would have ended it).
   */
  @Test
  void aPidGivenToAnotherProcessIsRefused() throws Exception {
    Path first = cluster.dir().resolve("first-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", first.toString()));
    long pid = counter.pid();
    await().atMost(TIMEOUT).until(() -> Workloads.count(first) >= 3);
    Path blocker = Files.writeString(cluster.fsRoot().resolve(cluster.namespace()), "a file where the namespace's folder should be");
    Checkpoint reused = new Checkpoint();
    reused.setMetadata(new ObjectMetaBuilder().withName("reused").withNamespace(cluster.namespace()).build());
    reused.setSpec(new CheckpointSpec(CheckpointTarget.process(cluster.node(), (int) pid)));
    reused.getSpec().storage = cluster.fsStorage();
    reused.getSpec().options = new CheckpointOptions();
    reused.getSpec().options.leaveRunning = false;
    reused.getSpec().backoffLimit = 1;
    Checkpoint created = cluster.client().resource(reused).create();
    Checkpoint waiting = await().atMost(TIMEOUT).until(() -> cluster.client().resource(created).get(),
        x -> x.getStatus() != null && x.getStatus().nextRetryTime != null);
    assertThat(waiting.getStatus().process.pid).isEqualTo((int) pid);
    assertThat(waiting.getStatus().process.startTicks).isEqualTo(Workloads.startTicks(pid));

    Workloads.kill(pid);
    assertThat(counter.launcher().waitFor(10, TimeUnit.SECONDS)).as("unshare reaped it: the PID is free").isTrue();
    Files.delete(blocker);
    Path second = cluster.dir().resolve("second-" + cluster.namespace() + ".txt");
    var newcomer = cluster.track(Workloads.startAt(pid, "counter", second.toString()));
    long newcomerStart = Workloads.startTicks(pid);

    Checkpoint c = cluster.awaitCheckpoint(created, CheckpointPhase.Failed);
    cluster.assertFailure(c.getStatus().reason, c.getStatus().message, "ProcessChanged",
        "PID " + pid + " no longer names the process this checkpoint is of");
    assertThat(c.getStatus().message).contains("which was not touched");
    assertThat(c.getStatus().attempts).isEqualTo(2);
    assertThat(Workloads.startTicks(newcomer.pid())).as("the same process, never ended").isEqualTo(newcomerStart);
    long now = Workloads.count(second);
    await().atMost(TIMEOUT).until(() -> Workloads.count(second) > now + 3);
    assertThat(cluster.fsRoot().resolve(cluster.namespace())).as("nothing stored").satisfiesAnyOf(
        p -> assertThat(p).doesNotExist(), p -> assertThat(p).isEmptyDirectory());
  }


  @Test
  void corruptedArchiveIsRefusedBeforeCriuRuns() throws Exception {
    Checkpoint done = checkpointACounter("flip");
    Path archive = archiveOf(done);
    try (RandomAccessFile file = new RandomAccessFile(archive.toFile(), "rw")) {
      file.seek(file.length() / 2);
      int b = file.read();
      file.seek(file.length() / 2);
      file.write(b ^ 0x01);
    }
    Restore r = cluster.awaitRestore(cluster.createRestore("flip", "flip"), RestorePhase.Failed);
    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "ArchiveCorrupted", "sha256");
    assertThat(r.getStatus().criuLogTail).as("CRIU never ran").isNull();
  }

  @Test
  void truncatedArchiveIsRefusedBeforeCriuRuns() throws Exception {
    Checkpoint done = checkpointACounter("cut");
    Path archive = archiveOf(done);
    try (RandomAccessFile file = new RandomAccessFile(archive.toFile(), "rw")) {
      file.setLength(file.length() / 3);
    }
    Restore r = cluster.awaitRestore(cluster.createRestore("cut", "cut"), RestorePhase.Failed);
    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "ArchiveCorrupted", "");
    assertThat(r.getStatus().criuLogTail).isNull();
  }

  @Test
  void missingManifestIsRefused() throws Exception {
    Checkpoint done = checkpointACounter("nomanifest");
    Files.delete(archiveOf(done).resolveSibling("manifest.json"));
    Restore r = cluster.awaitRestore(cluster.createRestore("nomanifest", "nomanifest"), RestorePhase.Failed);
    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "ManifestMissing", "take a new checkpoint");
  }

  /** A manifest written by a newer Stasis (or edited): refused with what to do, before any download. */
  @Test
  void manifestOfAnUnknownVersionIsRefused() throws Exception {
    Checkpoint done = checkpointACounter("newer");
    Path manifest = archiveOf(done).resolveSibling("manifest.json");
    // v1 (a whole archive) or v2 (deduplicated), whichever the storage wrote
    Files.writeString(manifest, Files.readString(manifest).replace(Manifest.FORMAT, "stasis.dev/manifest/v3")
        .replace(Manifest.FORMAT_CHUNKED, "stasis.dev/manifest/v3"));
    cluster.recordManifest(done, null, Files.readAllBytes(manifest));
    Restore r = cluster.awaitRestore(cluster.createRestore("newer", "newer"), RestorePhase.Failed);
    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "ManifestInvalid",
        "manifest format stasis.dev/manifest/v3 is newer than this agent understands");
    assertThat(r.getStatus().message).contains("upgrade the agent");
    assertThat(r.getStatus().criuLogTail).isNull();
  }

  /**
   * Someone who can write the bucket (but not the Checkpoint's status in etcd) swaps in the images
   * of another checkpoint and rewrites the manifest to match them: the manifest is not the one the
   * status recorded, so the restore is refused before any node downloads a byte or runs CRIU.
   */
  @Test
  void anArchiveAndManifestRewrittenTogetherInTheBucketAreRefusedBeforeCriuRuns() throws Exception {
    Checkpoint victim = checkpointACounter("victim", cluster.s3Storage());
    Checkpoint other = checkpointACounter("other", cluster.s3Storage());
    try (ObjectStore store = cluster.openStorage(cluster.s3Storage())) {
      ArchiveLayout victims = layout(victim);
      Manifest otherManifest = Manifest.fromJson(store.read(layout(other).manifestKey()));
      store.put(victims.archiveKey(ArchiveCodec.ZSTD), store.read(otherManifest.archive.key));
      Manifest forged = Manifest.fromJson(store.read(victims.manifestKey()));
      forged.archive.sha256 = otherManifest.archive.sha256;
      forged.archive.storedBytes = otherManifest.archive.storedBytes;
      forged.archive.sizeBytes = otherManifest.archive.sizeBytes;
      store.put(victims.manifestKey(), forged.toJson());
    }

    Restore r = cluster.awaitRestore(cluster.createRestore("victim", "victim"), RestorePhase.Failed);

    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "ManifestTampered",
        "is not the one stored when the checkpoint was taken");
    assertThat(r.getStatus().message).contains("Restore another checkpoint, and check who may write to the storage");
    assertThat(r.getStatus().node).as("placed nowhere").isNull();
    assertThat(r.getStatus().criuLogTail).as("CRIU never ran").isNull();
    assertThat(r.getStatus().restoredPid).isNull();
  }

  /** A checkpoint whose status records no manifest digest (an older agent took it) is not trusted. */
  @Test
  void aCheckpointWithoutARecordedManifestDigestIsRefused() throws Exception {
    Checkpoint old = checkpointACounter("unverified", cluster.s3Storage());
    cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace()).withName(old.getMetadata().getName())
        .editStatus(c -> {
          c.getStatus().archive.manifestSha256 = null;
          return c;
        });

    Restore r = cluster.awaitRestore(cluster.createRestore("unverified", "unverified"), RestorePhase.Failed);

    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "ManifestUnverified",
        "did not record its manifest's sha256 in the Checkpoint's status");
    assertThat(r.getStatus().message).contains("restore another checkpoint or take a new checkpoint");
    assertThat(r.getStatus().criuLogTail).isNull();
  }

  /** Outside a PID cluster.namespace() the restored process needs its old PID, which the original still holds. */
  @Test
  void pidsStillInUseOnRestore() throws Exception {
    Path out = cluster.dir().resolve("pids-" + cluster.namespace() + ".txt");
    Process original = new ProcessBuilder("setsid", Workloads.binary("counter").toString(), out.toString())
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectErrorStream(true).start();
    cluster.afterTest(() -> {
      Workloads.kill(original.pid());
      original.waitFor();
    });
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    cluster.awaitCheckpoint(cluster.createCheckpoint("pids", original.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    Restore r = cluster.awaitRestore(cluster.createRestore("pids", "pids"), RestorePhase.Failed);
    cluster.assertFailure(r.getStatus().reason, r.getStatus().message, "PidInUse", "PIDs are in use");
    assertThat(r.getStatus().criuLogTail).contains("File exists");
    assertThat(Workloads.isAlive(original.pid())).isTrue();
  }

  // --- helpers ---

  Checkpoint checkpointACounter(String name) throws Exception {
    return checkpointACounter(name, cluster.fsStorage());
  }

  Checkpoint checkpointACounter(String name, String storage) throws Exception {
    var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve(name + "-" + cluster.namespace()).toString()));
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint(name, counter.pid(), storage, null), CheckpointPhase.Completed);
    counter.close();
    return done;
  }

  static ArchiveLayout layout(Checkpoint c) {
    return new ArchiveLayout(c.getMetadata().getNamespace(), c.getMetadata().getName(), c.getMetadata().getUid());
  }

  Path archiveOf(Checkpoint c) {
    return Path.of(c.getStatus().archive.uri.substring("file://".length()));
  }


}
