package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.TestStorage;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Conditions;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreSpec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.cli.Main;
import dev.stasis.kube.Labels;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Storage and node faults on real parts, each with the end state a user sees. The S3 server is
 * reached through a {@link FaultInjectingProxy}, so that it can answer 500s, crawl, or vanish in
 * the middle of an upload; a small tmpfs stands for a full work folder. In every case: a final
 * phase with a reason, never Completed without a stored archive, no partial object or unfinished
 * multipart upload left, and the workload (stopped for the checkpoint: leaveRunning: false) runs on.
 */
class FaultMatrixIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  static FaultInjectingProxy link;
  static String faultyStorage;
  static String faultyDeduplicatingStorage;
  static S3Client bucket;

  @BeforeAll
  static void faultyLink() throws Exception {
    link = FaultInjectingProxy.to(cluster.s3().endpoint());
    faultyStorage = "faulty-" + cluster.node();
    // Whole archives: the faults hit the archive's upload. A deduplicated checkpoint's memory goes into packs
    // first: the *Packs cases below, on a storage of their own.
    TestStorage.s3(faultyStorage, link.endpoint(), "checkpoints").credentials(cluster.s3()).with(spec -> {
      spec.s3.prefix = "stasis";
      spec.deduplication = false;
    }).create(cluster.client());
    faultyDeduplicatingStorage = "faulty-dedup-" + cluster.node();
    TestStorage.s3(faultyDeduplicatingStorage, link.endpoint(), "checkpoints").credentials(cluster.s3())
        .with(spec -> spec.s3.prefix = "stasis-dedup").create(cluster.client());
    bucket = cluster.s3().client();
    await().atMost(TIMEOUT).until(() -> cluster.available(faultyStorage) && cluster.available(faultyDeduplicatingStorage));
  }

  @AfterAll
  static void closeLink() throws Exception {
    if (bucket != null) bucket.close();
    if (link != null) link.close();
  }

  @BeforeEach
  void healthyLink() {
    link.pass();
  }

  /** S3 fails every write: the checkpoint fails saying so, and a later one succeeds once S3 is well. */
  @Test
  void s3AnsweringErrors() throws Exception {
    Path out = cluster.dir().resolve("errors-" + cluster.namespace());
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    link.fail500(FaultMatrixIT::isArchiveUpload);

    Checkpoint c = awaitTerminal(createRetriedOnce("errors", counter.pid()));
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertFailure(c, "StorageFailed", "Status Code: 500");
    assertThat(c.getStatus().message).startsWith("failed after 2 attempts");
    assertThat(c.getStatus().message).contains("the workload was not ended");
    assertThat(c.getStatus().archive).isNull();
    assertThat(link.faulted()).isPositive();
    assertCounting(out);
    assertNothingStoredFor(c);

    link.pass();
    await().atMost(TIMEOUT).until(() -> cluster.available(faultyStorage));
    cluster.awaitCheckpoint(cluster.createCheckpoint("errors-healed", counter.pid(), faultyStorage, null), CheckpointPhase.Completed);
  }

  /**
   * Deduplicated, S3 fails every write of a pack: the checkpoint fails saying so before anything of
   * it is recorded, the workload runs on, and no object of the checkpoint is stored (a pack that
   * made it is no checkpoint's, and the storage's collection removes it).
   */
  @Test
  void s3AnsweringErrorsToPacks() throws Exception {
    Path out = cluster.dir().resolve("pack-errors-" + cluster.namespace());
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", "16", "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > 0);
    link.fail500(FaultMatrixIT::isPackUpload);

    Checkpoint c = awaitTerminal(createRetriedOnce("pack-errors", memhog.pid(), faultyDeduplicatingStorage));
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertFailure(c, "StorageFailed", "Status Code: 500");
    assertThat(c.getStatus().message).startsWith("failed after 2 attempts").contains("the workload was not ended");
    assertThat(c.getStatus().archive).isNull();
    assertCounting(out);
    assertNothingStoredFor(c);

    link.pass();
    await().atMost(TIMEOUT).until(() -> cluster.available(faultyDeduplicatingStorage));
    cluster.awaitCheckpoint(cluster.createCheckpoint("pack-errors-healed", memhog.pid(), faultyDeduplicatingStorage,
        null), CheckpointPhase.Completed);
  }

  /**
   * Deduplicated, S3 goes away while a pack is uploaded: the checkpoint fails, nothing of it is
   * stored or recorded, and the workload, held stopped until stored, runs on.
   */
  @Test
  void s3StoppedMidPack() throws Exception {
    Path out = cluster.dir().resolve("pack-stopped-" + cluster.namespace());
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", "64", "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > 0);
    link.slow(FaultMatrixIT::isPackUpload, Duration.ZERO, 4L << 20);
    int before = link.requests().size();
    Checkpoint created = createRetriedOnce("pack-stopped", memhog.pid(), faultyDeduplicatingStorage);
    await().atMost(TIMEOUT).until(() -> link.requests().stream().skip(before).anyMatch(FaultMatrixIT::isPackUpload));
    link.stop();

    Checkpoint c = awaitTerminal(created);
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertFailure(c, "StorageFailed", "the workload was not ended");
    assertThat(c.getStatus().archive).isNull();
    assertCounting(out);
    link.pass();
    await().atMost(TIMEOUT).until(() -> cluster.available(faultyDeduplicatingStorage));
    assertNothingStoredFor(c);
  }

  /**
   * S3 goes away in the middle of a multipart upload. The agent cannot abort what it cannot reach:
   * the unfinished upload stays until S3 is back and the failed Checkpoint is deleted.
   */
  @Test
  void s3StoppedMidUpload() throws Exception {
    Path out = cluster.dir().resolve("stopped-" + cluster.namespace());
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", "64", "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > 0);
    link.slow(FaultMatrixIT::isArchiveUpload, Duration.ZERO, 4L << 20);
    Checkpoint created = createRetriedOnce("stopped", memhog.pid());
    String uid = created.getMetadata().getUid();
    await().atMost(TIMEOUT).until(() -> bucket.listMultipartUploads(b -> b.bucket("checkpoints")).uploads().stream()
        .anyMatch(u -> u.key().contains(uid)));
    link.stop();

    Checkpoint c = awaitTerminal(created);
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertFailure(c, "StorageFailed", "nothing was kept and the workload was not ended");
    assertCounting(out);
    assertThat(bucket.listObjectsV2(b -> b.bucket("checkpoints")).contents()).noneMatch(o -> o.key().contains(uid));

    link.pass(); // S3 is back; deleting the Checkpoint removes what the agent could not
    await().atMost(TIMEOUT).until(() -> cluster.available(faultyStorage));
    cluster.client().resource(c).delete();
    await().atMost(TIMEOUT).until(() -> cluster.checkpoint("stopped") == null);
    assertNothingStoredFor(c);
  }

  /**
   * S3 is down when the Checkpoint is created: the operator keeps it Pending and tries again with
   * backoff (spec.backoffLimit) instead of failing it; once S3 is back it is taken and completes.
   */
  @Test
  void storageDownWhenTheCheckpointIsCreated() throws Exception {
    Path out = cluster.dir().resolve("down-" + cluster.namespace());
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    link.stop();
    recheck(faultyStorage);
    await().atMost(TIMEOUT).until(() -> "Unavailable".equals(
        cluster.client().resources(CheckpointStorage.class).withName(faultyStorage).get().getStatus().phase));

    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("down").withNamespace(cluster.namespace()).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(cluster.node(), (int) counter.pid())));
    c.getSpec().storage = faultyStorage;
    c.getSpec().backoffLimit = 6; // waits of 2, 4, 8, 16, 32 and 64 s in this test
    Checkpoint created = cluster.client().resource(c).create();
    Checkpoint waiting = await().atMost(TIMEOUT).until(() -> cluster.checkpoint("down"),
        w -> w.getStatus() != null && w.getStatus().nextRetryTime != null);
    assertThat(waiting.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(waiting.getStatus().message).startsWith("attempt 1/7 failed (StorageUnavailable): CheckpointStorage '"
        + faultyStorage + "' is unavailable: checking bucket checkpoints at " + link.endpoint() + " failed");
    assertThat(waiting.getStatus().reason).isEqualTo("StorageUnavailable");
    assertThat(waiting.getStatus().message).endsWith("; retrying in 2s");
    await().atMost(TIMEOUT).until(() -> cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems().stream()
        .anyMatch(e -> e.getReason().equals("Retrying") && e.getInvolvedObject().getName().equals("down")));

    link.pass();
    Checkpoint done = cluster.awaitCheckpoint(created, CheckpointPhase.Completed);
    assertThat(done.getStatus().attempts).as("the operator's attempts and the agent's").isGreaterThanOrEqualTo(2);
    assertThat(done.getStatus().conditions)
        .anyMatch(x -> x.getType().equals("Retrying") && x.getStatus().equals("False") && x.getReason().equals("Completed"));
  }

  /** Makes the operator check the storage now rather than at its next periodic check. */
  static void recheck(String storage) {
    cluster.client().resources(CheckpointStorage.class).withName(storage)
        .edit(s -> {
          Map<String, String> annotations = new HashMap<>();
          if (s.getMetadata().getAnnotations() != null) {
            annotations.putAll(s.getMetadata().getAnnotations());
          }
          annotations.put("test.stasis.dev/recheck", Long.toString(System.nanoTime()));
          s.getMetadata().setAnnotations(annotations);
          return s;
        });
  }

  /** S3 answers, but late and slowly: the checkpoint takes longer and completes, and it restores. */
  @Test
  void s3VerySlow() throws Exception {
    Path out = cluster.dir().resolve("slow-" + cluster.namespace());
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    link.slow(request -> true, Duration.ofMillis(300), 256 << 10);

    Checkpoint c = cluster.awaitCheckpoint(cluster.createCheckpoint("slow", counter.pid(), faultyStorage, stopUntilStored()),
        CheckpointPhase.Completed);
    assertThat(link.faulted()).as("requests slowed down").isGreaterThan(1);
    assertThat(c.getStatus().stats.totalTimeMillis).isGreaterThan(300);
    long checkpointed = Workloads.count(out);
    Restore r = cluster.awaitRestore(cluster.createRestore("slow", "slow"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(r.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > checkpointed + 3);
  }

  /**
   * A schedule keeps only its newest checkpoint (keepLast: 1) while a slow restore of the older one
   * waits for its archive: retention deletes the older Checkpoint, but its archive stays until the
   * restore no longer needs it (condition and Event ArchiveInUse), the restore completes, and only
   * then is the archive deleted.
   */
  @Test
  void retentionWaitsForASlowRestoreOfTheCheckpointItDeletes() throws Exception {
    Path out = cluster.dir().resolve("in-use-" + cluster.namespace());
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    CheckpointSchedule schedule = new CheckpointSchedule();
    schedule.setMetadata(new ObjectMetaBuilder().withName("keep1").withNamespace(cluster.namespace()).build());
    schedule.setSpec(new CheckpointScheduleSpec());
    schedule.getSpec().schedule = "@every 4s";
    schedule.getSpec().checkpointTemplate = new CheckpointTemplate();
    schedule.getSpec().checkpointTemplate.target = CheckpointTarget.process(cluster.node(), (int) counter.pid());
    schedule.getSpec().checkpointTemplate.storage = faultyStorage;
    schedule.getSpec().retention = new CheckpointScheduleSpec.Retention();
    schedule.getSpec().retention.keepLast = 1;
    CheckpointSchedule created = cluster.client().resource(schedule).create();
    cluster.afterTest(() -> cluster.client().resource(created).delete());
    Checkpoint older = await().atMost(TIMEOUT).until(() -> cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace())
        .withLabel(Labels.SCHEDULE, "keep1").list().getItems().stream()
        .filter(c -> c.getStatus() != null && c.getStatus().phase == CheckpointPhase.Completed).findFirst(),
        java.util.Optional::isPresent).get();
    String uid = older.getMetadata().getUid();
    link.slow(request -> request.isDownload() && request.target().contains(uid + "/archive"), Duration.ofSeconds(15),
        64L << 20);

    Restore restore = cluster.createRestore("in-use", older.getMetadata().getName());
    await().atMost(TIMEOUT).until(() -> {
      Checkpoint now = cluster.checkpoint(older.getMetadata().getName());
      return now != null && now.isMarkedForDeletion()
          && Conditions.isTrue(now.getStatus().conditions, "ArchiveInUse");
    });
    assertThat(cluster.restore("in-use").getStatus().phase).isEqualTo(RestorePhase.Restoring);
    assertThat(cluster.checkpoint(older.getMetadata().getName()).getStatus().conditions)
        .anyMatch(c -> c.getMessage().contains("the archive is kept until Restore in-use (Restoring)"));
    await().atMost(TIMEOUT).until(() -> cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems().stream()
        .anyMatch(e -> e.getReason().equals("ArchiveInUse") && e.getInvolvedObject().getUid().equals(uid)));
    assertThat(bucket.listObjectsV2(b -> b.bucket("checkpoints")).contents())
        .as("the archive is still there").anyMatch(o -> o.key().contains(uid + "/archive"));

    Restore done = cluster.awaitRestore(restore, RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(done.getStatus().restoredPid));
    assertThat(link.faulted()).as("the download was held").isPositive();
    await().atMost(TIMEOUT).until(() -> cluster.checkpoint(older.getMetadata().getName()) == null);
    assertNothingStoredFor(older);
  }

  /**
   * The agent's work folder is an 8 MiB tmpfs: a 64 MiB dump cannot fit, nor can the images of its
   * archive. Both fail with WorkDirFull; the workload runs on and nothing is stored; the restore
   * says so before it downloads.
   */
  @Test
  void workFolderFull() throws Exception {
    Path small = Files.createDirectories(cluster.dir().resolve("small-" + cluster.namespace()));
    run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small.toString());
    cluster.afterTest(() -> run("umount", small.toString()));
    String fullNode = cluster.node() + "-full";
    InProcessStasis fullAgent = InProcessStasis.on(cluster.client()).withoutOperator()
        .agent(fullNode, small, Main.criuPath(null)).start();
    cluster.afterTest(fullAgent::close); // before the unmount
    await().atMost(TIMEOUT).until(() -> cluster.client().resources(NodeProfile.class).withName(fullNode).get() != null);

    Path out = cluster.dir().resolve("full-" + cluster.namespace());
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", "64", "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > 0);
    Checkpoint c = awaitTerminal(cluster.createCheckpoint("full", fullNode, memhog.pid(), cluster.s3Storage(), stopUntilStored()));
    assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertFailure(c, "WorkDirFull", "No space left on device");
    assertCounting(out);
    assertNothingStoredFor(c);
    assertThat(small.resolve("checkpoints").resolve(c.getMetadata().getUid())).doesNotExist();

    // The same workload checkpointed on a node with room restores nowhere that has none.
    cluster.awaitCheckpoint(cluster.createCheckpoint("roomy", memhog.pid(), cluster.s3Storage(), null), CheckpointPhase.Completed);
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName("full").withNamespace(cluster.namespace()).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef("roomy");
    restore.getSpec().placement = new RestorePlacement();
    restore.getSpec().placement.nodeName = fullNode;
    Restore r = awaitTerminalRestore(cluster.client().resource(restore).create());
    assertThat(r.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(r.getStatus().reason).isEqualTo("WorkDirFull");
    assertThat(r.getStatus().message).contains("bytes free, the checkpoint's images need")
        .contains("nothing was downloaded");
    assertThat(r.getStatus().criuLogTail).as("CRIU never ran").isNull();
    assertThat(small.resolve("restores").resolve(r.getMetadata().getUid())).doesNotExist();
  }

  // --- helpers ---

  /** The archive's own bytes: the storage's health check writes other keys and stays well. */
  static boolean isArchiveUpload(FaultInjectingProxy.Request request) {
    return request.isUpload() && request.target().contains("/archive");
  }

  static boolean isPackUpload(FaultInjectingProxy.Request request) {
    return request.isUpload() && request.target().contains("/" + ArchiveLayout.PACKS_FOLDER);
  }

  /**
   * leaveRunning: false on the faulty storage, tried once more (10 s later) if the first attempt
   * fails: a fault that persists ends Failed within the test's patience, retries bounded.
   */
  Checkpoint createRetriedOnce(String name, long pid) {
    return createRetriedOnce(name, pid, faultyStorage);
  }

  Checkpoint createRetriedOnce(String name, long pid, String storage) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(cluster.namespace()).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(cluster.node(), (int) pid)));
    c.getSpec().storage = storage;
    c.getSpec().options = stopUntilStored();
    c.getSpec().backoffLimit = 1;
    return cluster.client().resource(c).create();
  }

  static CheckpointOptions stopUntilStored() {
    CheckpointOptions options = new CheckpointOptions();
    options.leaveRunning = false;
    return options;
  }

  Checkpoint awaitTerminal(Checkpoint c) {
    return await().atMost(TIMEOUT).until(() -> cluster.checkpoint(c.getMetadata().getName()),
        now -> now.getStatus() != null && now.getStatus().phase != null && now.getStatus().phase.isTerminal());
  }

  Restore awaitTerminalRestore(Restore r) {
    return await().atMost(TIMEOUT).until(() -> cluster.restore(r.getMetadata().getName()),
        now -> now.getStatus() != null && now.getStatus().phase != null && now.getStatus().phase.isTerminal());
  }

  void assertFailure(Checkpoint c, String reason, String text) {
    assertThat(c.getStatus().reason).as(c.getStatus().message).isEqualTo(reason);
    assertThat(c.getStatus().message).contains(text);
    await().atMost(TIMEOUT).until(() -> cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems().stream()
        .anyMatch(e -> reason.equals(e.getReason()) && "Warning".equals(e.getType())
            && e.getInvolvedObject().getName().equals(c.getMetadata().getName())));
  }

  static void assertCounting(Path out) {
    long now = Workloads.count(out);
    await().atMost(Duration.ofSeconds(15)).until(() -> Workloads.count(out) > now + 2);
  }

  /** Neither an object nor an unfinished multipart upload of the checkpoint in the bucket. */
  void assertNothingStoredFor(Checkpoint c) {
    String uid = c.getMetadata().getUid();
    assertThat(bucket.listObjectsV2(b -> b.bucket("checkpoints")).contents()).noneMatch(o -> o.key().contains(uid));
    assertThat(bucket.listMultipartUploads(b -> b.bucket("checkpoints")).uploads())
        .noneMatch(u -> u.key().contains(uid));
  }

  static void run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0).as("%s: %s", List.of(command), output).isTrue();
  }
}
