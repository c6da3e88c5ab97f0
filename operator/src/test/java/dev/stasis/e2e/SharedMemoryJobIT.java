package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * Jobs as they really run: two processes that talk through a segment in /dev/shm they both map
 * shared and writable (as OpenMPI's shared-memory transport does), while one of them writes its
 * log, not appending (src/test/workloads/shmjob.c). Real CRIU, the real API server, an agent.
 */
class SharedMemoryJobIT extends EndToEndTest {
  static final Duration JOB_TIMEOUT = Duration.ofMinutes(2);

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
