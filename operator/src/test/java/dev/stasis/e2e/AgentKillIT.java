package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreSpec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.testing.AgentProcess;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * The agent killed with SIGKILL (an OOM kill, a node crash of the agent alone) during a dump, an
 * upload, a download and a restore. The agent runs as its own process ({@code java -jar
 * stasis.jar agent}), killed by its PID at the moment the test sees; the CRIU it started outlives
 * it (on a node, a runtime that kills the agent's whole cgroup ends CRIU too; the next agent then
 * has nothing to wait for). A new agent for the same node then resolves what was left Running:
 * nothing stays Running, nothing is Completed without its archive, no partial object or open
 * multipart upload stays in the bucket, and the workload runs on. Killed while it writes the packs
 * of a deduplicated checkpoint, what it had stored is left to the storage's collection, which
 * keeps only what a manifest refers to.
 */
class AgentKillIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);
  static final String BUCKET = "agent-kills";
  /** The storages' key prefixes in the bucket: whole archives, and deduplicated checkpoints whose packs the tests collect. */
  static final String ARCHIVES = "archives";
  static final String PACKS = "packs";

  @TempDir static Path dir;
  static KubernetesClient admin;
  static S3Server s3;
  static FaultInjectingProxy link;
  /** The agent's link to the API server, where a test wants to hold the agent's writes. */
  static FaultInjectingProxy apiLink;
  static S3Client bucket;
  static InProcessStasis operator;
  static String node;
  static String archiveStorage;
  static String packStorage;

  String namespace;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    admin = TestControlPlane.admin();
    node = "kill-" + UUID.randomUUID().toString().substring(0, 6);
    s3 = S3Server.start();
    s3.createBucket(BUCKET);
    bucket = s3.client();
    link = FaultInjectingProxy.to(s3.endpoint());
    apiLink = FaultInjectingProxy.toApiServer(admin);
    TestStorage.s3(node, link.endpoint(), BUCKET).credentials(s3).create(admin);
    archiveStorage = node + "-" + ARCHIVES;
    TestStorage.s3(archiveStorage, link.endpoint(), BUCKET).credentials(s3).with(spec -> {
      spec.s3.prefix = ARCHIVES;
      spec.deduplication = false;
    }).create(admin);
    packStorage = node + "-" + PACKS;
    TestStorage.s3(packStorage, link.endpoint(), BUCKET).credentials(s3).with(spec -> {
      spec.s3.prefix = PACKS;
      spec.deduplication = true;
      spec.garbageCollection = new CheckpointStorageSpec.GarbageCollection();
      spec.garbageCollection.gracePeriod = "2s";
    }).create(admin);
    operator = InProcessStasis.on(admin).start();
  }

  @AfterAll
  static void stop() throws Exception {
    if (operator != null) operator.close();
    if (link != null) link.close();
    if (apiLink != null) apiLink.close();
    if (bucket != null) bucket.close();
    if (s3 != null) s3.close();
  }

  @BeforeEach
  void newNamespace() throws Exception {
    namespace = TestControlPlane.newNamespace("kill");
    link.pass();
    apiLink.pass();
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (AutoCloseable c : cleanup) {
      c.close();
    }
  }

  @Test
  void killedDuringTheDump() throws Exception {
    Path count = dir.resolve("dump-" + namespace);
    var memhog = track(Workloads.startInPidNamespace("memhog", "256", "0", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > 0);
    AgentProcess agent = startAgent();
    String uid = createCheckpoint("dump", memhog.pid()).getMetadata().getUid();
    Path work = workDir("checkpoints", uid);
    await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(5)).until(() -> Files.exists(work.resolve("dump.log")));
    agent.kill();
    boolean dumpFinished = Files.readString(work.resolve("dump.log")).contains("Dumping finished successfully");

    startAgent();
    Checkpoint c = awaitCheckpoint("dump");
    assertResolved(c, count, "restarted while this checkpoint ran");
    System.out.printf("agent killed during the dump (CRIU had %s): %s%n", dumpFinished ? "finished" : "not finished",
        c.getStatus().message);
  }

  @Test
  void killedDuringTheUpload() throws Exception {
    Path count = dir.resolve("upload-" + namespace);
    var memhog = track(Workloads.startInPidNamespace("memhog", "48", "0", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > 0);
    link.slow(FaultInjectingProxy.Request::isUpload, Duration.ZERO, 4L << 20);
    AgentProcess agent = startAgent();
    String uid = createCheckpoint("upload", memhog.pid(), archiveStorage).getMetadata().getUid();
    Path work = workDir("checkpoints", uid);
    // Dumped (CRIU waits in its post-dump hook, which marks that it does) and uploading.
    await().atMost(TIMEOUT).until(() -> Files.exists(work.resolve("hook-frozen"))
        && !bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads().isEmpty());
    // CRIU holds it (ptrace: "t") until the archive is stored (leaveRunning: false), then ends it itself.
    assertThat(stateOf(memhog.pid())).as("held frozen by CRIU until stored").isEqualTo("t");
    agent.kill();
    link.pass();

    startAgent();
    assertResolved(awaitCheckpoint("upload"), count,
        "the workload, held frozen after its dump, was resumed; what it had stored and its work folder were removed");
  }

  /**
   * The twin of {@link #killedDuringTheUpload} for a deduplicated checkpoint: killed once the
   * first packs are stored and more are on their way (the agent writes 3 of 16 MiB at a time, at
   * 4 MiB/s each here). Not tried again ({@code backoffLimit: 0}), so that what the killed attempt
   * stored stays unreferenced: resolved as a whole archive is, no manifest refers to its packs, and
   * the storage's collection, past its grace period, removes them.
   */
  @Test
  void killedWhileWritingPacks() throws Exception {
    Path count = dir.resolve("packs-" + namespace);
    var memhog = track(Workloads.startInPidNamespace("memhog", "128", "0", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > 0);
    link.slow(FaultInjectingProxy.Request::isUpload, Duration.ZERO, 4L << 20);
    AgentProcess agent = startAgent();
    Checkpoint packsCheckpoint = checkpoint("packs", memhog.pid(), packStorage);
    packsCheckpoint.getSpec().backoffLimit = 0;
    String uid = admin.resource(packsCheckpoint).create().getMetadata().getUid();
    Path work = workDir("checkpoints", uid);
    String packs = PACKS + "/" + ArchiveLayout.packPrefix(namespace);
    await().atMost(TIMEOUT).until(() -> Files.exists(work.resolve("hook-frozen"))
        && keys().stream().anyMatch(k -> k.startsWith(packs) && k.endsWith(".pack"))
        && checkpoint("packs").getStatus().phase == CheckpointPhase.Running);
    assertThat(stateOf(memhog.pid())).as("held frozen by CRIU until stored").isEqualTo("t");
    agent.kill();
    link.pass();

    startAgent();
    Checkpoint c = awaitCheckpoint("packs");
    assertThat(c.getStatus().phase).as(c.getStatus().message).isEqualTo(CheckpointPhase.Failed);
    assertResolved(c, count,
        "the workload, held frozen after its dump, was resumed; what it had stored and its work folder were removed");
    String checkpoints = PACKS + "/" + namespace + "/";
    assertThat(keys()).as("packs stored, no manifest that refers to them").anyMatch(k -> k.startsWith(packs))
        .noneMatch(k -> k.startsWith(checkpoints) && k.endsWith(ArchiveLayout.MANIFEST_FILE_NAME));

    Instant newest = bucket.listObjectsV2(b -> b.bucket(BUCKET).prefix(packs)).contents().stream()
        .map(S3Object::lastModified).max(Instant::compareTo).orElseThrow();
    await("the packs are older than the grace period").atMost(TIMEOUT)
        .until(() -> Instant.now().isAfter(newest.plusSeconds(3)));
    CheckpointStorageStatus.Usage usage = TestStorage.collectNow(admin, packStorage, "2s", TIMEOUT).getStatus().usage;
    assertThat(keys()).as("the collection removed the packs no manifest refers to").noneMatch(k -> k.startsWith(packs));
    assertThat(usage.storedBytes).isZero();
    assertThat(usage.manifests).isZero();
  }

  @Test
  void killedDuringTheDownload() throws Exception {
    Path count = dir.resolve("download-" + namespace);
    var counter = track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);
    AgentProcess agent = startAgent();
    createCheckpoint("download", counter.pid());
    Checkpoint done = awaitCheckpoint("download");
    assertThat(done.getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    long checkpointed = Workloads.count(count); // ended with the checkpoint (leaveRunning: false)
    List<String> stored = keys();

    link.slow(r -> r.isDownload() && r.target().contains("archive"), Duration.ofSeconds(30), 1024);
    String uid = createRestore("download").getMetadata().getUid();
    await().atMost(TIMEOUT).until(() -> link.faulted() > 0); // the agent asked for the archive
    agent.kill();
    link.pass();

    startAgent();
    Restore r = awaitRestore("download");
    assertThat(keys()).as("the archive is untouched").isEqualTo(stored);
    if (r.getStatus().phase == RestorePhase.Completed) { // restored by a retry
      Workloads.kill(r.getStatus().restoredPid);
      await().atMost(TIMEOUT).until(() -> "Exited".equals(restore("download").getStatus().processState));
    } else {
      assertThat(r.getStatus().phase).as(r.getStatus().message).isEqualTo(RestorePhase.Failed);
      assertFailure(r.getStatus().reason, r.getStatus().message, "AgentRestarted", "nothing was restored");
    }
    await().atMost(TIMEOUT).until(() -> !Files.exists(workDir("restores", uid)));

    // Nothing was lost: the same checkpoint restores, and the count goes on from where it was.
    createRestore("download-again");
    Restore again = awaitRestore("download-again");
    assertThat(again.getStatus().phase).as(again.getStatus().message).isEqualTo(RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(again.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > checkpointed + 3);
  }

  @Test
  void killedDuringTheRestore() throws Exception {
    Path count = dir.resolve("restore-" + namespace);
    var memhog = track(Workloads.startInPidNamespace("memhog", "128", "0", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > 0);
    AgentProcess agent = startAgent();
    createCheckpoint("restore", memhog.pid());
    assertThat(awaitCheckpoint("restore").getStatus().phase).isEqualTo(CheckpointPhase.Completed);
    long checkpointed = Workloads.count(count);

    String uid = createRestore("restore").getMetadata().getUid();
    Path work = workDir("restores", uid);
    await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(5)).until(() -> Files.exists(work.resolve("restore.log")));
    agent.kill();
    // CRIU goes on without the agent; the tree it restores is this test's to end.
    Path pidFile = work.resolve("restore.pid");
    await().atMost(TIMEOUT).until(() -> Files.exists(pidFile) && !Files.readString(pidFile).isBlank());
    long restoredPid = Long.parseLong(Files.readString(pidFile).trim());
    cleanup.add(() -> Workloads.kill(restoredPid));

    startAgent();
    Restore r = awaitRestore("restore");
    assertThat(r.getStatus().phase).as(r.getStatus().reason + ": " + r.getStatus().message)
        .isEqualTo(RestorePhase.Completed);
    assertThat(r.getStatus().restoredPid).isEqualTo((int) restoredPid);
    assertThat(r.getStatus().message).contains("took the running tree over");
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > checkpointed + 3);

    // The new agent watches the tree it took over: its end is reported.
    Workloads.kill(restoredPid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(restore("restore").getStatus().processState));
    assertThat(work).doesNotExist();
  }

  /**
   * leaveRunning: false. The agent stored the archive, recorded it in the status and ended the
   * workload; it is killed before Completed is written (the API server link drops every write of
   * the status once the workload is gone). The next agent finds the record, checks the storage
   * against it and completes the checkpoint, never trying it again on a PID that is gone; the
   * archive restores and the count goes on.
   */
  @Test
  void killedBetweenEndingTheWorkloadAndWritingCompleted() throws Exception {
    Path count = dir.resolve("ended-" + namespace);
    var counter = track(Workloads.startInPidNamespace("counter", count.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 3);
    AgentProcess agent = startAgent(apiLink.kubeconfig(dir.resolve("kubeconfig-" + namespace)));
    apiLink.drop(r -> r.isStatusWrite("checkpoints", namespace, "ended") && ends(counter.pid(), Duration.ofSeconds(2)));
    String uid = createCheckpoint("ended", counter.pid()).getMetadata().getUid();
    await().atMost(TIMEOUT).until(() -> apiLink.faulted() > 0);
    agent.kill();
    apiLink.pass();
    long checkpointed = Workloads.count(count);
    assertThat(restore("ended")).as("no Restore yet").isNull();
    Checkpoint left = admin.resources(Checkpoint.class).inNamespace(namespace).withName("ended").get();
    assertThat(left.getStatus().phase).as("the dead agent never wrote Completed").isEqualTo(CheckpointPhase.Running);
    assertThat(left.getStatus().archive).as("but it recorded the stored archive").isNotNull();

    startAgent();
    Checkpoint c = awaitCheckpoint("ended");
    assertThat(c.getStatus().phase).as(c.getStatus().reason + ": " + c.getStatus().message)
        .isEqualTo(CheckpointPhase.Completed);
    assertThat(c.getStatus().message).contains("restarted after it had stored and recorded", "finished it from that record");
    assertThat(c.getStatus().attempts).as("never tried again").isEqualTo(1);
    assertThat(c.getStatus().archive.sha256).isEqualTo(left.getStatus().archive.sha256);
    assertThat(keys()).anyMatch(k -> k.contains(uid) && k.endsWith("manifest.json"));
    await().atMost(TIMEOUT).until(() -> !Files.exists(workDir("checkpoints", uid)));

    createRestore("ended");
    Restore r = awaitRestore("ended");
    assertThat(r.getStatus().phase).as(r.getStatus().reason + ": " + r.getStatus().message)
        .isEqualTo(RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(r.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> Workloads.count(count) > checkpointed + 3);
  }

  /** Whether the workload ends within {@code wait}: its end is what the agent's next write follows. */
  static boolean ends(long pid, Duration wait) {
    long deadline = System.nanoTime() + wait.toNanos();
    while (Workloads.isAlive(pid)) {
      if (System.nanoTime() > deadline) {
        return false;
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }
    return true;
  }

  // --- helpers ---

  AgentProcess startAgent() throws Exception {
    return startAgent(TestControlPlane.kubeconfig());
  }

  /** An agent as its own process, ended by its PID: SIGKILL in the test, SIGKILL at cleanup. */
  AgentProcess startAgent(Path kubeconfig) throws Exception {
    AgentProcess agent = AgentProcess.start(node, dir.resolve("work"), kubeconfig, Files.createTempFile(dir, "agent-", ".log"));
    cleanup.add(agent);
    return agent;
  }

  Workloads.Workload track(Workloads.Workload w) {
    cleanup.add(w);
    return w;
  }

  Path workDir(String kind, String uid) {
    return dir.resolve("work").resolve(kind).resolve(uid);
  }

  Checkpoint createCheckpoint(String name, long pid) {
    return createCheckpoint(name, pid, node);
  }

  Checkpoint createCheckpoint(String name, long pid, String storage) {
    return admin.resource(checkpoint(name, pid, storage)).create();
  }

  /** A Checkpoint of {@code pid} on this node into {@code storage}, not created yet. */
  Checkpoint checkpoint(String name, long pid, String storage) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) pid)));
    c.getSpec().storage = storage;
    c.getSpec().options = new CheckpointOptions();
    c.getSpec().options.leaveRunning = false; // the hard case: the tree is stopped while it is stored
    return c;
  }

  Restore createRestore(String name) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(name.replace("-again", ""));
    r.getSpec().placement = new RestorePlacement();
    r.getSpec().placement.nodeName = node;
    return admin.resource(r).create();
  }

  Restore restore(String name) {
    return admin.resources(Restore.class).inNamespace(namespace).withName(name).get();
  }

  Checkpoint checkpoint(String name) {
    return admin.resources(Checkpoint.class).inNamespace(namespace).withName(name).get();
  }

  Checkpoint awaitCheckpoint(String name) {
    return await().atMost(TIMEOUT).until(
        () -> admin.resources(Checkpoint.class).inNamespace(namespace).withName(name).get(),
        c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.isTerminal());
  }

  Restore awaitRestore(String name) {
    return await().atMost(TIMEOUT).until(() -> restore(name),
        r -> r.getStatus() != null && r.getStatus().phase != null && r.getStatus().phase.isTerminal());
  }

  void assertFailure(String reason, String message, String expectedReason, String expectedText) {
    assertThat(reason).isEqualTo(expectedReason);
    assertThat(message).contains(expectedText);
    await().atMost(TIMEOUT).until(() -> admin.v1().events().inNamespace(namespace).list().getItems().stream()
        .anyMatch(e -> expectedReason.equals(e.getReason()) && "Warning".equals(e.getType())));
  }

  /**
   * What an agent's death mid-checkpoint may end in: Failed for it, the workload running on and
   * nothing of the checkpoint stored; or, where retries are on, Completed by a retry with its
   * archive and manifest stored whole (and the workload ended, as leaveRunning: false asks).
   */
  void assertResolved(Checkpoint c, Path count, String failureText) {
    String uid = c.getMetadata().getUid();
    Path work = workDir("checkpoints", uid);
    if (c.getStatus().phase == CheckpointPhase.Completed) {
      assertThat(c.getStatus().archive.sha256).isNotBlank();
      assertThat(keys()).anyMatch(k -> k.contains(uid) && k.endsWith("manifest.json"))
          .anyMatch(k -> k.contains(uid) && k.contains("/archive"));
      assertThat(bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()).noneMatch(u -> u.key().contains(uid));
      // The images are deleted just after Completed is written, not before.
      await().atMost(TIMEOUT).until(() -> !Files.exists(work));
      return;
    }
    assertThat(c.getStatus().phase).as(c.getStatus().message).isEqualTo(CheckpointPhase.Failed);
    assertFailure(c.getStatus().reason, c.getStatus().message, "AgentRestarted", failureText);
    assertCounting(count);
    assertNothingLeftOf(uid, work);
  }

  /** Running, not frozen: its count goes on. */
  static void assertCounting(Path count) {
    long now = Workloads.count(count);
    await().atMost(Duration.ofSeconds(15)).until(() -> Workloads.count(count) > now + 2);
  }

  /** No object, no unfinished multipart upload of the checkpoint in the bucket, no work folder on the node. */
  void assertNothingLeftOf(String uid, Path work) {
    assertThat(keys()).noneMatch(k -> k.contains(uid));
    assertThat(bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()).noneMatch(u -> u.key().contains(uid));
    assertThat(work).doesNotExist();
  }

  List<String> keys() {
    return TestStorage.keysIn(bucket, BUCKET);
  }

  static String stateOf(long pid) throws Exception {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    return stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  }
}
