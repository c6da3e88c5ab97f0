package dev.stasis.bench;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Checkpoints and restores one process holding {@code mib} MiB of memory, with Stasis and by hand,
 * alternating which goes first. Both take the same process (it keeps running: leaveRunning), and
 * both restore while it still runs: each restore gets a PID namespace of its own. Frozen only: Stasis'
 * checkpoint against a bare {@code criu dump}, nothing restored, the frozen time the only figure.
 */
final class ProcessCheckpointRun {
  private static final double MIB = 1 << 20;
  /** The agent's heap must stay below this however large the process (issue 17). */
  private static final double AGENT_HEAP_MIB = 256;

  private final BenchEnvironment env;
  private final int mib;
  private final boolean compressible;
  private final boolean frozenOnly;
  private final String label;
  /** Starts the names of this run's Checkpoints and Restores; names are never reused within a run. */
  private final String namePrefix;

  private final Samples stasisCheckpoint = new Samples();
  private final Samples agentCheckpoint = new Samples();
  private final Samples byHandCheckpoint = new Samples();
  private final Samples byHandDump = new Samples();
  private final Samples byHandCompress = new Samples();
  private final Samples byHandUpload = new Samples();
  private final Samples stasisFrozen = new Samples();
  private final Samples byHandFrozen = new Samples();
  private final Samples stasisStored = new Samples();
  private final Samples byHandStored = new Samples();
  private final Samples stasisRestore = new Samples();
  private final Samples byHandRestore = new Samples();
  private final Samples byHandDownload = new Samples();
  private final Samples byHandUnpack = new Samples();
  private final Samples byHandCriuRestore = new Samples();
  private final Samples agentRss = new Samples();
  private final Samples agentHeap = new Samples();
  private final Samples agentLiveHeap = new Samples();
  private final Samples agentCpu = new Samples();

  ProcessCheckpointRun(BenchEnvironment env, String namePrefix, int mib, boolean compressible, boolean frozenOnly) {
    this.env = env;
    this.frozenOnly = frozenOnly;
    this.namePrefix = namePrefix;
    this.mib = mib;
    this.compressible = compressible;
    this.label = mib + "MiB-" + (compressible ? "compressible" : "incompressible");
  }

  List<Figure> run(int repetitions) throws Exception {
    for (int rep = 0; rep < repetitions; rep++) {
      Benchmark.progress(String.format("%s: repetition %d of %d", label, rep + 1, repetitions));
      repetition(rep);
    }
    return figures();
  }

  private void repetition(int rep) throws Exception {
    String name = namePrefix + "-" + label.toLowerCase() + "-" + rep;
    Path dir = Files.createDirectories(env.work.resolve("by-hand").resolve(name));
    Path out = dir.resolve("memhog.txt");
    try (Workloads.Workload memhog = Workloads.startInPidNamespace("memhog", Integer.toString(mib),
        compressible ? "1" : "0", out.toString())) {
      env.workloads.add(memhog);
      BenchEnvironment.await("memhog to fill its memory", () -> Files.exists(out));
      stopCountFile(out);
      boolean stasisFirst = rep % 2 == 1; // alternate, so that neither always meets a warmer cache
      env.agent.startWindow();
      for (int i = 0; i < 2; i++) {
        if (stasisFirst == (i == 0)) {
          stasisCheckpoint(name, memhog.pid());
        } else if (frozenOnly) {
          byHandDump(memhog.pid(), dir.resolve("checkpoint"));
        } else {
          byHandCheckpoint(name, memhog.pid(), dir.resolve("checkpoint"));
        }
      }
      for (int i = 0; i < 2 && !frozenOnly; i++) {
        if (stasisFirst == (i == 0)) {
          stasisRestore(name);
        } else {
          byHandRestore(name, dir.resolve("restore"));
        }
      }
      RoleProcess.Usage usage = env.agent.endWindow();
      agentRss.add(usage.peakRssMiB());
      agentHeap.add(usage.heapPeakMiB());
      agentLiveHeap.add(usage.liveAfterGcMiB());
      agentCpu.add(usage.cpuSeconds());
      log("agent CPU %.2f s for the checkpoint and the restore", usage.cpuSeconds());
      env.workloads.remove(memhog);
    } finally {
      cleanUp(name, dir);
    }
  }

  /**
   * memhog rewrites its count file every 100 ms. A checkpoint taken while the file is open records
   * its size then, and CRIU refuses to restore once the still-running original has changed it
   * ("has bad size"). A directory in the file's place makes memhog's writes fail quietly, so from
   * here on it holds no file open and only keeps its memory.
   */
  private static void stopCountFile(Path out) throws IOException, InterruptedException {
    Files.move(out, out.resolveSibling("memhog-filled.txt"));
    Files.createDirectory(out);
    Thread.sleep(300); // a write that opened the file before the swap has finished by now
  }

  private void stasisCheckpoint(String name, long pid) throws Exception {
    settleDisk();
    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(BenchEnvironment.NODE, (int) pid)));
    var done = createAndAwait(checkpoint, env.checkpoints);
    var status = done.resource().getStatus();
    if (status.phase != CheckpointPhase.Completed) {
      throw failed(checkpoint, status.phase, status);
    }
    stasisCheckpoint.add(done.seconds());
    agentCheckpoint.add(status.stats.totalTimeMillis / 1e3);
    stasisFrozen.add(status.stats.frozenTimeMicros / 1e6);
    log("Stasis checkpoint %.2f s (agent's own %.2f s), frozen %.1f ms", done.seconds(),
        status.stats.totalTimeMillis / 1e3, status.stats.frozenTimeMicros / 1e3);
    stasisStored.add(status.archive.storedBytes / MIB);
  }

  private void byHandCheckpoint(String name, long pid, Path dir) throws Exception {
    settleDisk();
    ByHandPipeline.Checkpoint c = env.byHand.checkpoint(pid, dir, key(name));
    byHandCheckpoint.add(c.totalSeconds());
    byHandDump.add(c.dumpSeconds());
    byHandCompress.add(c.compressSeconds());
    byHandUpload.add(c.uploadSeconds());
    byHandFrozen.add(c.frozenMicros() / 1e6);
    log("by hand checkpoint %.2f s (criu dump %.2f s), frozen %.1f ms", c.totalSeconds(), c.dumpSeconds(),
        c.frozenMicros() / 1e3);
    byHandStored.add(c.archiveBytes() / MIB);
    deleteDirectory(dir); // the by-hand script's images and archive are not needed any more
  }

  private void byHandDump(long pid, Path dir) throws Exception {
    settleDisk();
    long frozenMicros = env.byHand.dump(pid, dir).stats().frozenTimeMicros();
    byHandFrozen.add(frozenMicros / 1e6);
    log("bare criu frozen %.1f ms", frozenMicros / 1e3);
    deleteDirectory(dir);
  }

  /** Every repetition's figures in the log (frozen time: CRIU's stats-dump): the table keeps only medians and ranges. */
  private void log(String format, Object... args) {
    Benchmark.progress(label + ": " + String.format(format, args));
  }

  private void stasisRestore(String name) throws Exception {
    settleDisk();
    Restore restore = new Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    restore.setSpec(new RestoreSpec());
    restore.getSpec().checkpointRef = new CheckpointRef(name);
    var done = createAndAwait(restore, env.restores);
    var status = done.resource().getStatus();
    if (status.phase != RestorePhase.Completed) {
      throw failed(restore, status.phase, status);
    }
    stasisRestore.add(done.seconds());
    log("Stasis restore %.2f s", done.seconds());
    int restoredPid = status.restoredPid;
    Workloads.kill(restoredPid); // the agent's CRIU reaps it
    BenchEnvironment.await("restored PID " + restoredPid + " to end", () -> !Workloads.isAlive(restoredPid));
  }

  private record Timed<T>(T resource, double seconds) {}

  /** Creates the resource and waits until a watch sees it settle: as then, and the seconds from the create call. */
  private <T extends HasMetadata> Timed<T> createAndAwait(T resource, Settlements<T> settlements) throws Exception {
    var settled = settlements.future(resource.getMetadata().getName());
    long created = System.nanoTime();
    env.client.resource(resource).create();
    var done = settled.get(10, TimeUnit.MINUTES);
    return new Timed<>(done.resource(), (done.nanoTime() - created) / 1e9);
  }

  private static IllegalStateException failed(HasMetadata resource, Object phase, AgentWorkStatus status) {
    return new IllegalStateException(resource.getKind() + " " + resource.getMetadata().getName() + " " + phase + ": "
        + status.reason + " " + status.message + "\n" + status.criuLogTail);
  }

  private void byHandRestore(String name, Path dir) throws Exception {
    settleDisk();
    ByHandPipeline.Restore r = env.byHand.restore(dir, key(name));
    byHandRestore.add(r.totalSeconds());
    log("by hand restore %.2f s", r.totalSeconds());
    byHandDownload.add(r.downloadSeconds());
    byHandUnpack.add(r.unpackSeconds());
    byHandCriuRestore.add(r.criuSeconds());
    Workloads.kill(r.tree().pid()); // CRIU, its parent, reaps it
    r.tree().onExit().get(1, TimeUnit.MINUTES);
  }

  private void cleanUp(String name, Path dir) throws Exception {
    deleteAndAwait(env.client.resources(Restore.class).inNamespace(BenchEnvironment.NAMESPACE).withName(name).get());
    // Deleting the Checkpoint deletes its archive (finalizer).
    deleteAndAwait(env.client.resources(Checkpoint.class).inNamespace(BenchEnvironment.NAMESPACE).withName(name).get());
    try {
      env.byHand.delete(key(name));
    } catch (IOException e) {
      // nothing was uploaded
    }
    deleteDirectory(dir);
  }

  private void deleteAndAwait(HasMetadata resource) throws InterruptedException {
    if (resource == null) {
      return;
    }
    env.client.resource(resource).delete();
    BenchEnvironment.await(resource.getKind() + " " + resource.getMetadata().getName() + " to be deleted",
        () -> env.client.resource(resource).get() == null);
  }

  private static String key(String name) {
    return "by-hand/" + name + ".tar.zst";
  }

  /**
   * Writes back what earlier steps left in the page cache, so that no step pays for the previous
   * one's disk writes.
   */
  static void settleDisk() throws IOException, InterruptedException {
    new ProcessBuilder("sync").start().waitFor(2, TimeUnit.MINUTES);
  }

  static void deleteDirectory(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private List<Figure> figures() {
    // The targets are set at 1 GiB; frozen time and the agent's heap hold at every size.
    boolean gib = mib == 1024;
    Figure frozen = new Figure("frozen-" + label, "s", stasisFrozen, byHandFrozen, Target.ratio(1.05), Map.of());
    if (frozenOnly) {
      return List.of(frozen);
    }
    List<Figure> figures = new ArrayList<>();
    figures.add(new Figure("checkpoint-" + label, "s", stasisCheckpoint, byHandCheckpoint,
        gib ? Target.ratio(compressible ? 0.5 : 0.8) : null, details(
            "by hand: criu dump", byHandDump, "by hand: tar | zstd", byHandCompress, "by hand: upload", byHandUpload,
            "Stasis: agent's own time", agentCheckpoint)));
    figures.add(new Figure("checkpoint-agent-" + label, "s", agentCheckpoint, byHandCheckpoint, null, Map.of()));
    figures.add(frozen);
    figures.add(new Figure("stored-" + label, "MiB", stasisStored, byHandStored, null, Map.of()));
    figures.add(new Figure("restore-" + label, "s", stasisRestore, byHandRestore,
        gib ? Target.ratio(compressible ? 0.6 : 0.7) : null, details(
            "by hand: download", byHandDownload, "by hand: zstd -d | tar x", byHandUnpack,
            "by hand: criu restore", byHandCriuRestore)));
    figures.add(new Figure("agent-peak-rss-" + label, "MiB", agentRss, null, null, Map.of()));
    figures.add(new Figure("agent-peak-heap-" + label, "MiB", agentHeap, null, Target.atMost(AGENT_HEAP_MIB),
        Map.of("live heap after GC", agentLiveHeap.median())));
    // The agent's CPU for one checkpoint and one restore together.
    figures.add(new Figure("agent-cpu-" + label, "s", agentCpu, null,
        gib ? Target.atMost(compressible ? 1.0 : 2.0) : null, Map.of()));
    return figures;
  }

  private static Map<String, Double> details(Object... stageAndSamples) {
    Map<String, Double> details = new LinkedHashMap<>();
    for (int i = 0; i < stageAndSamples.length; i += 2) {
      details.put((String) stageAndSamples[i], ((Samples) stageAndSamples[i + 1]).median());
    }
    return details;
  }
}
