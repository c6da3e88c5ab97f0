package dev.stasis.bench;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.criu.Criu;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * {@code bench/jobs.sh}: jobs as they really run (issue 19), on the same real parts as
 * {@code bench/run.sh} (kube-apiserver, s3proxy, the operator and the agent in JVMs of their own).
 *
 * <ul>
 *   <li>Frozen time of an MPI-shaped job (src/test/workloads/shmjob.c: two ranks over a segment in
 *       /dev/shm), checkpointed by Stasis (which holds it frozen while it copies the segment, to
 *       travel with the checkpoint) and by bare {@code criu dump --leave-running}, alternating, in
 *       the same run: the target is Stasis within 5% of bare CRIU.
 *   <li>A TCP pair with data in flight both ways (tcpstream.c) checkpointed with leaveRunning:
 *       false and restored, {@code --cycles} times in a row; every byte must arrive once, in order.
 * </ul>
 *
 * Writes bench/jobs.md, which BENCHMARKS.md carries as its last section. Options: --repetitions 7,
 * --sizes 0,256 (MiB of memory per rank), --cycles 100, --no-write.
 */
public final class JobsBenchmark {
  private static final long STARTED = System.nanoTime();
  private static final long CYCLE_TIMEOUT_SECONDS = 120;

  private JobsBenchmark() {}

  public static void main(String[] args) throws Exception {
    BenchOptions options = BenchOptions.parse(args, Map.of("--repetitions", "7", "--cycles", "100", "--sizes", "0,256"));
    int repetitions = options.integer("--repetitions");
    int cycles = options.integer("--cycles");
    List<Integer> sizes = options.sizes("--sizes");
    boolean write = options.write();
    Path repo = TestControlPlane.repoRoot();
    Path work = Benchmark.freshWorkFolder(repo, "bench-jobs");
    Criu criu = Benchmark.usableCriu();
    String started = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    Map<String, String> machine = Machine.describe(criu);

    List<Figure> figures = new ArrayList<>();
    TcpCycles tcp;
    try (BenchEnvironment env = BenchEnvironment.start(work, criu)) {
      Thread stopOnInterrupt = new Thread(env::close, "bench-stop");
      Runtime.getRuntime().addShutdownHook(stopOnInterrupt);
      for (int mib : sizes) {
        figures.add(frozen(env, mib, repetitions));
      }
      tcp = tcpCycles(env, cycles);
      Runtime.getRuntime().removeShutdownHook(stopOnInterrupt);
    }
    machine.put("load average at end", Machine.loadAverage());
    String section = section(figures, tcp, machine, started, (System.nanoTime() - STARTED) / 60e9);
    System.out.println();
    System.out.print(section);
    if (write) {
      Files.writeString(repo.resolve("bench/jobs.md"), section);
      Path benchmarks = repo.resolve("BENCHMARKS.md");
      String page = Files.readString(benchmarks);
      int at = page.indexOf(SECTION_HEADING);
      Files.writeString(benchmarks, (at < 0 ? page + "\n" : page.substring(0, at)) + section);
      System.out.println("\nwritten: bench/jobs.md, and the last section of BENCHMARKS.md");
    }
  }

  static final String SECTION_HEADING = "## Jobs as they really run (bench/jobs.sh)";

  /** Stasis and bare CRIU, alternating which goes first, on one running job; the job goes on after each. */
  private static Figure frozen(BenchEnvironment env, int mib, int repetitions) throws Exception {
    String label = "frozen-mpi-job-2x" + mib + "MiB";
    Samples stasis = new Samples();
    Samples bare = new Samples();
    Path dir = Files.createDirectories(env.work.resolve(label));
    Path segment = Path.of("/dev/shm", "stasis-bench-" + UUID.randomUUID());
    Path log = dir.resolve("job.log");
    try (Workloads.Workload job = Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(),
        "100000000", "5", Integer.toString(mib))) {
      env.workloads.add(job);
      BenchEnvironment.await("the job to run", () -> lines(log) > 5);
      for (int rep = 0; rep < repetitions; rep++) {
        Benchmark.progress(String.format("%s: repetition %d of %d", label, rep + 1, repetitions));
        for (int i = 0; i < 2; i++) {
          if ((rep % 2 == 1) == (i == 0)) {
            stasis.add(stasisFrozenSeconds(env, label.toLowerCase(Locale.ROOT) + "-" + rep, job.pid()));
          } else {
            Path byHand = dir.resolve("by-hand-" + rep);
            bare.add(env.byHand.checkpoint(job.pid(), byHand, label + "-" + rep).frozenMicros() / 1e6);
            Benchmark.deleteRecursively(byHand);
          }
        }
      }
      env.workloads.remove(job);
    } finally {
      Files.deleteIfExists(segment);
    }
    return new Figure(label, "s", stasis, bare, Target.ratio(1.05), Map.of());
  }

  private static double stasisFrozenSeconds(BenchEnvironment env, String name, long pid) throws Exception {
    Checkpoint done = create(env, checkpoint(name, pid, null));
    if (done.getStatus().phase != CheckpointPhase.Completed) {
      throw new IllegalStateException("checkpoint " + name + " " + done.getStatus().phase + ": "
          + done.getStatus().reason + " " + done.getStatus().message);
    }
    return done.getStatus().stats.frozenTimeMicros / 1e6;
  }

  private record TcpCycles(int cycles, int completed, List<String> failures, Samples cycleSeconds) {}

  /** Checkpoint (leaveRunning: false, tcpEstablished) and restore, again and again; each must go on without loss. */
  private static TcpCycles tcpCycles(BenchEnvironment env, int cycles) throws Exception {
    Path status = Files.createDirectories(env.work.resolve("tcp")).resolve("status");
    List<String> failures = new ArrayList<>();
    Samples seconds = new Samples();
    int completed = 0;
    Workloads.Workload pair = Workloads.startInPidNamespace("tcpstream", status.toString());
    env.workloads.add(pair);
    long pid = pair.pid();
    try {
      BenchEnvironment.await("the pair to exchange data", () -> verified(status)[0] > 0 && verified(status)[1] > 0);
      for (int cycle = 1; cycle <= cycles; cycle++) {
        Benchmark.progress(String.format("tcp with data in flight: cycle %d of %d", cycle, cycles));
        long start = System.nanoTime();
        String name = "tcp-" + cycle;
        var options = new CheckpointOptions();
        options.leaveRunning = false;
        options.tcpEstablished = true;
        Checkpoint done = create(env, checkpoint(name, pid, options));
        if (done.getStatus().phase != CheckpointPhase.Completed) {
          failures.add("cycle " + cycle + ": checkpoint " + done.getStatus().reason + " " + done.getStatus().message);
          break;
        }
        long ended = pid;
        BenchEnvironment.await("the checkpointed pair to end", () -> !Workloads.isAlive(ended));
        long[] atCheckpoint = verified(status);
        Restore restored = create(env, restore(name));
        if (restored.getStatus().phase != RestorePhase.Completed) {
          failures.add("cycle " + cycle + ": restore " + restored.getStatus().reason + " " + restored.getStatus().message);
          break;
        }
        pid = restored.getStatus().restoredPid;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(CYCLE_TIMEOUT_SECONDS);
        long[] now = verified(status);
        while ((now[0] <= atCheckpoint[0] || now[1] <= atCheckpoint[1]) && now[0] >= 0 && System.nanoTime() < deadline) {
          Thread.sleep(20);
          now = verified(status);
        }
        if (now[0] < 0) {
          failures.add("cycle " + cycle + ": " + Files.readString(status).strip());
          break;
        }
        if (now[0] <= atCheckpoint[0] || now[1] <= atCheckpoint[1]) {
          failures.add("cycle " + cycle + ": no byte arrived within " + CYCLE_TIMEOUT_SECONDS + " s after the restore");
          break;
        }
        completed++;
        seconds.add((System.nanoTime() - start) / 1e9);
      }
    } finally {
      Workloads.kill(pid);
      env.workloads.remove(pair);
      pair.close();
    }
    return new TcpCycles(cycles, completed, failures, seconds);
  }

  private static Checkpoint checkpoint(String name, long pid, CheckpointOptions options) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(BenchEnvironment.NODE, (int) pid)));
    c.getSpec().options = options;
    return c;
  }

  private static Restore restore(String name) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(name);
    return r;
  }

  private static Checkpoint create(BenchEnvironment env, Checkpoint c) throws Exception {
    var settled = env.checkpoints.future(c.getMetadata().getName());
    env.client.resource(c).create();
    return settled.get(CYCLE_TIMEOUT_SECONDS, TimeUnit.SECONDS).resource();
  }

  private static Restore create(BenchEnvironment env, Restore r) throws Exception {
    var settled = env.restores.future(r.getMetadata().getName());
    env.client.resource(r).create();
    return settled.get(CYCLE_TIMEOUT_SECONDS, TimeUnit.SECONDS).resource();
  }

  /** Bytes the server and the client verified; {-1, -1} once the pair reported a loss or a break. */
  private static long[] verified(Path status) {
    try {
      String line = Files.readString(status).strip();
      if (line.startsWith("ok ")) {
        String[] f = line.split(" ");
        return new long[] {Long.parseLong(f[1]), Long.parseLong(f[2])};
      }
      return line.isEmpty() ? new long[] {0, 0} : new long[] {-1, -1};
    } catch (IOException | RuntimeException e) {
      return new long[] {0, 0}; // not written yet, or caught mid-rewrite
    }
  }

  private static long lines(Path file) {
    try (var lines = Files.lines(file)) {
      return lines.count();
    } catch (IOException e) {
      return 0;
    }
  }

  private static String section(List<Figure> figures, TcpCycles tcp, Map<String, String> machine, String started,
      double minutes) {
    StringBuilder md = new StringBuilder(SECTION_HEADING).append("\n\n");
    md.append("Started ").append(started).append(String.format(Locale.ROOT, ", took %.1f minutes; ", minutes))
        .append("load average at the end ").append(machine.get("load average at end")).append(".\n\n");
    md.append("**Frozen time** of an MPI-shaped job (`shmjob`: two ranks over a 64 KiB segment in /dev/shm they "
        + "both map, each rank holding the MiB named), checkpointed by Stasis, which holds the job frozen while it "
        + "copies the segment (it travels with the checkpoint), and by bare `criu dump --leave-running`, in "
        + "alternating order on the same running job. Seconds, median (min–max).\n\n");
    md.append("| figure | Stasis | bare CRIU | ratio | target | met |\n|---|---|---|---|---|---|\n");
    for (Figure f : figures) {
      md.append("| ").append(f.name()).append(" | ").append(value(f.stasis())).append(" | ").append(value(f.baseline()))
          .append(" | ").append(Figure.format(f.ratio())).append("× | ").append(f.target().describe(f.unit()))
          .append(" | ").append(f.met() ? "yes" : "**no**").append(" |\n");
    }
    md.append("\n**TCP with data in flight both ways** (`tcpstream`: both ends of one loopback connection in the "
        + "tree, send and receive queues full, every byte checked), checkpointed with `leaveRunning: false, "
        + "tcpEstablished: true` and restored, ").append(tcp.cycles()).append(" times in a row through the API "
        + "server: ").append(tcp.completed()).append(" of ").append(tcp.cycles()).append(" cycles went on without a "
        + "lost byte");
    if (!tcp.cycleSeconds().isEmpty()) {
      md.append(", ").append(value(tcp.cycleSeconds())).append(" s a cycle");
    }
    md.append(tcp.failures().isEmpty() ? ".\n" : "; then: " + String.join("; ", tcp.failures()) + ".\n");
    return md.toString();
  }

  private static String value(Samples s) {
    return Figure.format(s.median()) + " (" + Figure.format(s.min()) + "–" + Figure.format(s.max()) + ")";
  }
}
