package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.ProcessTargetPolicy;
import dev.stasis.agent.TravellingFileLimits;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.Restore;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.archive.Sha256;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Restores;
import dev.stasis.testing.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Jobs as they really run: two processes that talk through a segment in /dev/shm they both map
 * shared and writable (as OpenMPI's shared-memory transport does), while one of them writes its
 * log, not appending (src/test/workloads/shmjob.c). Real CRIU, the real API server, an agent.
 */
class SharedMemoryJobIT extends EndToEndTest {
  static final Duration JOB_TIMEOUT = Duration.ofMinutes(2);
  /** A second node on this machine, like the first; and one whose agent carries at most 4 KiB of tmpfs files. */
  static String OTHER;
  static String SMALL;
  static InProcessStasis moreAgents;

  @BeforeAll
  static void startTwoMoreAgents() {
    OTHER = NODE + "-other";
    SMALL = NODE + "-small";
    Criu criu = new Criu(Main.criuPath(null), Map.of());
    moreAgents = InProcessStasis.on(client).withoutOperator()
        .agent(new AgentConfig(OTHER, shared.resolve("work-other"), criu, Set.of(ProcessTargetPolicy.ALL)))
        .agent(new AgentConfig(SMALL, shared.resolve("work-small"), criu, Set.of(ProcessTargetPolicy.ALL))
            .withTravellingLimits(new TravellingFileLimits(8, 4096)))
        .start();
    await().atMost(TIMEOUT).until(() -> Stream.of(OTHER, SMALL)
        .allMatch(n -> client.resources(NodeProfile.class).withName(n).get() != null));
  }

  @AfterAll
  static void stopTwoMoreAgents() {
    if (moreAgents != null) moreAgents.close();
  }

  /**
   * Stopped at the checkpoint (leaveRunning: false), the job left its segment and its log exactly
   * as CRIU saw them: the restore is not refused for files the job itself wrote, and the job
   * finishes with a log byte for byte that of a run never interrupted.
   */
  @Test
  void aStoppedJobOverSharedMemoryFinishesAsAnUninterruptedRun() throws Exception {
    int steps = 300;
    Path reference = uninterruptedRun(steps);
    Path segment = segment();
    Path log = shared.resolve("stopped-" + namespace + ".log");
    var job = track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), Integer.toString(steps)));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 30);

    var options = new CheckpointOptions();
    options.leaveRunning = false;
    awaitCheckpoint(createCheckpoint("stopped", job.pid(), fsStorage, options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(job.pid()));
    long linesAtStop = lines(log);
    assertThat(linesAtStop).as("stopped mid-run").isLessThan(steps);

    Restore restored = awaitRestore(createRestore("stopped", "stopped"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().message).as("the segment is there, with the content that travelled")
        .doesNotContain("put back");
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(restore("stopped").getStatus().processState));
    assertThat(Files.readString(log)).isEqualTo(Files.readString(reference));
  }

  /**
   * Left running (the default), the job wrote on: its log now has more than CRIU recorded, which
   * CRIU would refuse; the pre-flight refuses first and names the log and both sizes. The segment,
   * rewritten at every step, is not held against the restore: CRIU does not compare its content.
   */
  @Test
  void aJobThatWroteToItsLogAfterTheCheckpointIsRefusedNamingTheLog() throws Exception {
    Path segment = segment();
    Path log = shared.resolve("running-" + namespace + ".log");
    var job = track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), "100000"));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 10);

    awaitCheckpoint(createCheckpoint("running", job.pid(), fsStorage, null), CheckpointPhase.Completed);
    long linesAtCheckpoint = lines(log);
    await().atMost(TIMEOUT).until(() -> lines(log) > linesAtCheckpoint + 10);
    job.close();
    long sizeNow = Files.size(log);

    Restore refused = awaitRestore(createRestore("running", "running"), RestorePhase.Failed);
    assertFailure(refused.getStatus().reason, refused.getStatus().message, "PreflightPathChanged",
        log + " has " + sizeNow + " bytes, ");
    assertThat(refused.getStatus().message).contains("at the checkpoint (written to after the checkpoint")
        .doesNotContain(segment.toString());
    assertThat(refused.getStatus().criuLogTail).as("CRIU never ran").isNull();
  }

  /**
   * The segment lives in /dev/shm, in the memory of the node the job ran on: it travels in the
   * archive, and the restore on another node (where it is not: deleted here) puts it back before
   * CRIU runs. The log, on a disk, must exist there, as CRIU saw it. The job finishes as an
   * uninterrupted run does.
   */
  @Test
  void aStoppedJobRestoresOnAnotherNodeWithItsSegmentPutBack() throws Exception {
    int steps = 300;
    Path reference = uninterruptedRun(steps);
    Path segment = segment();
    Path log = shared.resolve("moved-" + namespace + ".log");
    var job = track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), Integer.toString(steps)));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 30);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    Checkpoint done = awaitCheckpoint(createCheckpoint("moved", job.pid(), fsStorage, options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(job.pid()));

    Manifest manifest = manifestOf(done);
    RequiredPath travelled = manifest.paths.stream().filter(p -> p.path.equals(segment.toString())).findFirst().orElseThrow();
    assertThat(travelled.travelsAs).startsWith("travelling/");
    assertThat(travelled.sha256).isEqualTo(Sha256.hex(Sha256.newDigest().digest(Files.readAllBytes(segment))));
    assertThat(travelled.size).isEqualTo(64 * 1024L);
    assertThat(travelled.permissions).isEqualTo("rw-------");
    RequiredPath mustExist = manifest.paths.stream().filter(p -> p.path.equals(log.toString())).findFirst().orElseThrow();
    assertThat(mustExist.travelsAs).isNull();
    assertThat(mustExist.written).isTrue();
    Files.delete(segment); // as on a node that never ran the job

    Restore restored = awaitRestore(createRestore("moved", "moved", OTHER), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().node).isEqualTo(OTHER);
    assertThat(restored.getStatus().message).contains("put back 1 file(s) that travelled with the checkpoint: " + segment);
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(restore("moved").getStatus().processState));
    assertThat(Files.readString(log)).isEqualTo(Files.readString(reference));
  }

  /**
   * Left running, a job whose files are all on tmpfs (segment and log in /dev/shm) goes on writing
   * both: what travels is what they held at the instant CRIU froze it, copied while it was frozen.
   * After the job ends, the restore puts back the checkpoint's segment and log over the later ones,
   * and the job finishes as an uninterrupted run does.
   */
  @Test
  void aJobLeftRunningTakesItsTmpfsFilesAsTheyWereWhileFrozen() throws Exception {
    int steps = 300;
    Path reference = uninterruptedRun(steps);
    Path segment = segment();
    Path log = segment();
    var job = track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), Integer.toString(steps)));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 30);

    awaitCheckpoint(createCheckpoint("running-on", job.pid(), fsStorage, null), CheckpointPhase.Completed);
    long linesAtCheckpoint = lines(log);
    await().atMost(TIMEOUT).until(() -> lines(log) > linesAtCheckpoint + 20);
    job.close();
    assertThat(lines(log)).as("stopped mid-run").isLessThan(steps);

    Restore restored = awaitRestore(createRestore("running-on", "running-on"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().message).contains("put back 2 file(s)", segment.toString(), log.toString());
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(restore("running-on").getStatus().processState));
    assertThat(Files.readString(log)).isEqualTo(Files.readString(reference));
  }

  /** More than the agent may carry: refused, naming the file, with nothing stored; the job goes on. */
  @Test
  void aJobHoldingMoreThanTheAgentCarriesIsRefusedAndGoesOn() throws Exception {
    Path segment = segment();
    Path log = shared.resolve("big-" + namespace + ".log");
    var job = track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), "100000"));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 10);
    var options = new CheckpointOptions();
    options.leaveRunning = false;

    Checkpoint refused = awaitCheckpoint(createCheckpoint("big", SMALL, job.pid(), fsStorage, options),
        CheckpointPhase.Failed);
    assertFailure(refused.getStatus().reason, refused.getStatus().message, "TravellingFilesTooLarge",
        "the job holds 1 file on tmpfs (" + segment + ") of 65536 bytes in all");
    assertThat(refused.getStatus().message).contains("at most 8 files and 4096 bytes", "--travelling-files-max-bytes",
        "The workload was resumed and nothing was stored");
    assertThat(refused.getStatus().archive).isNull();
    if (Files.exists(fsRoot.resolve(namespace))) {
      try (Stream<Path> stored = Files.walk(fsRoot.resolve(namespace))) {
        assertThat(stored.filter(Files::isRegularFile)).as("nothing stored").isEmpty();
      }
    }
    long now = lines(log);
    await("the job goes on").atMost(TIMEOUT).until(() -> lines(log) > now + 10);
  }

  Restore createRestore(String name, String checkpoint, String node) {
    Restore r = Restores.of(namespace, name, checkpoint);
    r.getSpec().placement = new RestorePlacement();
    r.getSpec().placement.nodeName = node;
    return client.resource(r).create();
  }

  /** The log of the same job run to its end without a checkpoint. */
  Path uninterruptedRun(int steps) throws Exception {
    Path segment = segment();
    Path log = shared.resolve("reference-" + namespace + ".log");
    Process run = new ProcessBuilder(Workloads.binary("shmjob").toString(), segment.toString(), log.toString(),
        Integer.toString(steps), "0").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    cleanup.add(run::destroyForcibly);
    await().atMost(JOB_TIMEOUT).until(() -> !run.isAlive());
    assertThat(run.exitValue()).isZero();
    assertThat(Files.readString(log)).endsWith("\n").contains("done ");
    return log;
  }

  /** A fresh segment name in /dev/shm, removed after the test. */
  Path segment() {
    Path segment = Path.of("/dev/shm", "stasis-it-" + UUID.randomUUID());
    cleanup.add(() -> Files.deleteIfExists(segment));
    return segment;
  }
}
