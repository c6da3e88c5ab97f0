package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.TravellingFileLimits;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.archive.Sha256;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Jobs as they really run: two processes that talk through a segment in /dev/shm they both map
 * shared and writable (as OpenMPI's shared-memory transport does), while one of them writes its
 * log, not appending (src/test/workloads/shmjob.c). Real CRIU, the real API server, an agent.
 */
class SharedMemoryJobIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  static final Duration JOB_TIMEOUT = Duration.ofMinutes(4);
  static final int LAMMPS_STEPS = 20_000;
  private static final Pattern THERMO_LINE = Pattern.compile("\\s+\\d+(\\s+-?[\\d.]+(e[-+]\\d+)?){5}\\s*");
  /** A second node on this machine, like the first; and one whose agent carries at most 4 KiB of tmpfs files. */
  static String OTHER;
  static String SMALL;
  static InProcessStasis moreAgents;

  @BeforeAll
  static void startTwoMoreAgents() {
    OTHER = cluster.node() + "-other";
    SMALL = cluster.node() + "-small";
    Criu criu = new Criu(Main.criuPath(null), Map.of());
    moreAgents = InProcessStasis.on(cluster.client()).withoutOperator()
        .agent(new AgentConfig(OTHER, cluster.dir().resolve("work-other"), criu, Set.of(ProcessTargetPolicy.ALL)))
        .agent(new AgentConfig(SMALL, cluster.dir().resolve("work-small"), criu, Set.of(ProcessTargetPolicy.ALL))
            .withTravellingLimits(new TravellingFileLimits(8, 4096)))
        .start();
    await().atMost(TIMEOUT).until(() -> Stream.of(OTHER, SMALL)
        .allMatch(n -> cluster.client().resources(NodeProfile.class).withName(n).get() != null));
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
    Path log = cluster.dir().resolve("stopped-" + cluster.namespace() + ".log");
    var job = cluster.track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), Integer.toString(steps)));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 30);

    var options = new CheckpointOptions();
    options.leaveRunning = false;
    cluster.awaitCheckpoint(cluster.createCheckpoint("stopped", job.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(job.pid()));
    long linesAtStop = Workloads.lines(log);
    assertThat(linesAtStop).as("stopped mid-run").isLessThan(steps);

    Restore restored = cluster.awaitRestore(cluster.createRestore("stopped", "stopped"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().message).as("the segment is there, with the content that travelled")
        .doesNotContain("put back");
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(cluster.restore("stopped").getStatus().processState));
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
    Path log = cluster.dir().resolve("running-" + cluster.namespace() + ".log");
    var job = cluster.track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), "100000"));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 10);

    cluster.awaitCheckpoint(cluster.createCheckpoint("running", job.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    long linesAtCheckpoint = Workloads.lines(log);
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) > linesAtCheckpoint + 10);
    job.close();
    long sizeNow = Files.size(log);

    Restore refused = cluster.awaitRestore(cluster.createRestore("running", "running"), RestorePhase.Failed);
    cluster.assertFailure(refused.getStatus().reason, refused.getStatus().message, "PreflightPathChanged",
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
    Path log = cluster.dir().resolve("moved-" + cluster.namespace() + ".log");
    var job = cluster.track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), Integer.toString(steps)));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 30);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("moved", job.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(job.pid()));

    Manifest manifest = cluster.manifestOf(done);
    RequiredPath travelled = manifest.paths.stream().filter(p -> p.path.equals(segment.toString())).findFirst().orElseThrow();
    assertThat(travelled.travelsAs).startsWith("travelling/");
    assertThat(travelled.sha256).isEqualTo(Sha256.hex(Sha256.newDigest().digest(Files.readAllBytes(segment))));
    assertThat(travelled.size).isEqualTo(64 * 1024L);
    assertThat(travelled.permissions).isEqualTo("rw-------");
    RequiredPath mustExist = manifest.paths.stream().filter(p -> p.path.equals(log.toString())).findFirst().orElseThrow();
    assertThat(mustExist.travelsAs).isNull();
    assertThat(mustExist.written).isTrue();
    assertThat(InspectIT.inspect("moved", "-n", cluster.namespace()).ok()).as("stasis inspect says what travels")
        .containsPattern("travels     " + Pattern.quote(segment.toString()) + "  \\(\\w+, 64.0 KiB, in the archive, put back"
            + " before CRIU restores\\)")
        .containsPattern("must exist  " + Pattern.quote(log.toString()) + "  \\(\\w+(, [^,]+)?, compared by size\\)");
    Files.delete(segment); // as on a node that never ran the job

    Restore restored = cluster.awaitRestore(createRestore("moved", "moved", OTHER), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().node).isEqualTo(OTHER);
    assertThat(restored.getStatus().message).contains("put back 1 file(s) that travelled with the checkpoint: " + segment);
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(cluster.restore("moved").getStatus().processState));
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
    var job = cluster.track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), Integer.toString(steps)));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 30);

    cluster.awaitCheckpoint(cluster.createCheckpoint("running-on", job.pid(), cluster.fsStorage(), null), CheckpointPhase.Completed);
    long linesAtCheckpoint = Workloads.lines(log);
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) > linesAtCheckpoint + 20);
    job.close();
    assertThat(Workloads.lines(log)).as("stopped mid-run").isLessThan(steps);

    Restore restored = cluster.awaitRestore(cluster.createRestore("running-on", "running-on"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().message).contains("put back 2 file(s)", segment.toString(), log.toString());
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(cluster.restore("running-on").getStatus().processState));
    assertThat(Files.readString(log)).isEqualTo(Files.readString(reference));
  }

  /** More than the agent may carry: refused, naming the file, with nothing stored; the job goes on. */
  @Test
  void aJobHoldingMoreThanTheAgentCarriesIsRefusedAndGoesOn() throws Exception {
    Path segment = segment();
    Path log = cluster.dir().resolve("big-" + cluster.namespace() + ".log");
    var job = cluster.track(Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), "100000"));
    await().atMost(TIMEOUT).until(() -> Workloads.lines(log) >= 10);
    var options = new CheckpointOptions();
    options.leaveRunning = false;

    Checkpoint refused = cluster.awaitCheckpoint(cluster.createCheckpoint("big", SMALL, job.pid(), cluster.fsStorage(), options),
        CheckpointPhase.Failed);
    cluster.assertFailure(refused.getStatus().reason, refused.getStatus().message, "TravellingFilesTooLarge",
        "the job holds 1 file on tmpfs (" + segment + ") of 65536 bytes in all");
    assertThat(refused.getStatus().message).contains("at most 8 files and 4096 bytes", "--travelling-files-max-bytes",
        "The workload was resumed and nothing was stored");
    assertThat(refused.getStatus().archive).isNull();
    if (Files.exists(cluster.fsRoot().resolve(cluster.namespace()))) {
      try (Stream<Path> stored = Files.walk(cluster.fsRoot().resolve(cluster.namespace()))) {
        assertThat(stored.filter(Files::isRegularFile)).as("nothing stored").isEmpty();
      }
    }
    long now = Workloads.lines(log);
    await("the job goes on").atMost(TIMEOUT).until(() -> Workloads.lines(log) > now + 10);
  }

  /**
   * LAMMPS (Debian's, scripts/install-mpi-workloads.sh) on one core, stopped at a checkpoint
   * mid-run: restored, it finishes with thermo output identical to an uninterrupted run's.
   */
  @Test
  void serialLammpsStoppedMidRunFinishesWithTheThermoOfAnUninterruptedRun() throws Exception {
    List<String> reference = thermo(lammps(List.of(tool("lmp").toString()), "serial-reference", false));
    Path log = cluster.dir().resolve("serial-" + cluster.namespace() + ".lammps");
    var job = cluster.track(Workloads.startCommandInPidNamespace(lammpsCommand(List.of(tool("lmp").toString()), log)));
    await().atMost(TIMEOUT).until(() -> thermo(log).size() >= 3);

    var options = new CheckpointOptions();
    options.leaveRunning = false;
    options.tcpEstablished = true; // a singleton MPI_Init starts an orted and talks to it over TCP
    cluster.awaitCheckpoint(cluster.createCheckpoint("lammps", job.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(job.pid()));
    assertThat(thermo(log).size()).as("stopped mid-run").isLessThan(reference.size());

    Restore restored = cluster.awaitRestore(cluster.createRestore("lammps", "lammps"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(cluster.restore("lammps").getStatus().processState));
    assertThat(thermo(log)).isEqualTo(reference);
  }

  /**
   * LAMMPS over {@code mpirun -np 2} (Open MPI: two ranks over its shared-memory transport, whose
   * segments are in /dev/shm, and TCP connections on the loopback between mpirun and the ranks),
   * stopped at a checkpoint mid-run, restored on another node, where the segments are not: they
   * travel, the connections (both ends in the tree) are restored with it, and the run finishes with
   * thermo output identical to an uninterrupted run's.
   */
  @Test
  void lammpsOverMpirunRestoresOnAnotherNodeAndFinishesWithTheThermoOfAnUninterruptedRun() throws Exception {
    List<String> mpirun = List.of(tool("mpirun").toString(), "--allow-run-as-root", "-np", "2", "--mca", "btl",
        "self,vader", "--mca", "oob_tcp_if_include", "lo", "lmp");
    List<String> reference = thermo(lammps(mpirun, "mpi-reference", true));
    Path log = cluster.dir().resolve("mpi-" + cluster.namespace() + ".lammps");
    var job = cluster.track(Workloads.startCommandInPidNamespace(lammpsCommand(mpirun, log)));
    await().atMost(TIMEOUT).until(() -> thermo(log).size() >= 3);

    var options = new CheckpointOptions();
    options.leaveRunning = false;
    options.tcpEstablished = true;
    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("mpi", job.pid(), cluster.fsStorage(), options), CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(job.pid()));
    assertThat(thermo(log).size()).as("stopped mid-run").isLessThan(reference.size());
    Manifest manifest = cluster.manifestOf(done);
    assertThat(manifest.tcpConnections).as("mpirun and its ranks, on the loopback").isNotEmpty()
        .allMatch(c -> c.startsWith("127.0.0.1:"));
    List<Path> travelled = manifest.paths.stream().filter(p -> p.travelsAs != null).map(p -> Path.of(p.path)).toList();
    assertThat(travelled).as("Open MPI's shared-memory segments").hasSizeGreaterThanOrEqualTo(2)
        .allMatch(p -> p.startsWith("/dev/shm") && p.getFileName().toString().startsWith("vader_segment"));
    for (Path segment : travelled) {
      cluster.afterTest(() -> Files.deleteIfExists(segment));
      Files.delete(segment); // as on a node that never ran the job
    }

    Restore restored = cluster.awaitRestore(createRestore("mpi", "mpi", OTHER), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    assertThat(restored.getStatus().message).contains("put back " + travelled.size() + " file(s)");
    await().atMost(JOB_TIMEOUT).until(() -> "Exited".equals(cluster.restore("mpi").getStatus().processState));
    assertThat(thermo(log)).isEqualTo(reference);
  }

  /** {@code launcher} running the melt to its end, uninterrupted; its log. */
  Path lammps(List<String> launcher, String name, boolean mpi) throws Exception {
    Path log = cluster.dir().resolve(name + "-" + cluster.namespace() + ".lammps");
    Process run = new ProcessBuilder(lammpsCommand(launcher, log)).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    cluster.afterTest(run::destroyForcibly);
    await().atMost(JOB_TIMEOUT).until(() -> !run.isAlive());
    assertThat(run.exitValue()).as((mpi ? "mpirun" : "lmp") + " exit code").isZero();
    return log;
  }

  static List<String> lammpsCommand(List<String> launcher, Path log) {
    List<String> command = new ArrayList<>(launcher);
    command.addAll(List.of("-in", Path.of("src/test/resources/lammps/in.melt").toAbsolutePath().toString(),
        "-var", "steps", Integer.toString(LAMMPS_STEPS), "-log", log.toString()));
    return command;
  }

  /** The thermo lines of a LAMMPS log: step, temperature, energies, pressure. */
  static List<String> thermo(Path log) {
    try (Stream<String> lines = Files.lines(log)) {
      return lines.filter(l -> THERMO_LINE.matcher(l).matches()).toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** LAMMPS and Open MPI as scripts/install-mpi-workloads.sh installed them (make test does). */
  static Path tool(String name) throws Exception {
    Path wrapper = TestControlPlane.repoRoot().resolve(".stasis/bin").resolve(name);
    assertThat(wrapper).as("run scripts/install-mpi-workloads.sh").isExecutable();
    return wrapper;
  }

  Restore createRestore(String name, String checkpoint, String node) {
    Restore r = Restores.of(cluster.namespace(), name, checkpoint);
    r.getSpec().placement = new RestorePlacement();
    r.getSpec().placement.nodeName = node;
    return cluster.client().resource(r).create();
  }

  /** The log of the same job run to its end without a checkpoint. */
  Path uninterruptedRun(int steps) throws Exception {
    Path segment = segment();
    Path log = cluster.dir().resolve("reference-" + cluster.namespace() + ".log");
    Process run = new ProcessBuilder(Workloads.binary("shmjob").toString(), segment.toString(), log.toString(),
        Integer.toString(steps), "0").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    cluster.afterTest(run::destroyForcibly);
    await().atMost(JOB_TIMEOUT).until(() -> !run.isAlive());
    assertThat(run.exitValue()).isZero();
    assertThat(Files.readString(log)).endsWith("\n").contains("done ");
    return log;
  }

  /** A fresh segment name in /dev/shm, removed after the test. */
  Path segment() {
    Path segment = Path.of("/dev/shm", "stasis-it-" + UUID.randomUUID());
    cluster.afterTest(() -> Files.deleteIfExists(segment));
    return segment;
  }
}
