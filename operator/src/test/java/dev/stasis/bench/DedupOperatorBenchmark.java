package dev.stasis.bench;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.criu.Criu;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code bench/dedup-operator.sh}: deduplicated checkpoints (issue 18) through the operator and the
 * agent on the real parts of {@code bench/run.sh}, against whole archives of the same process in
 * the same run. memchurn (src/test/workloads/memchurn.c) holds {@code --size} MiB of incompressible
 * memory; it is checkpointed whole, then {@code --checkpoints} times deduplicated with 5% of its
 * memory rewritten in 1 MiB blocks between each, then once after a new mapping of 1/16 and once
 * after 5% of its pages were rewritten at scattered places. The whole archive and the last of the
 * series are restored, alternating, {@code --restores} times. Writes the section "Through the
 * operator" of bench/dedup.md, and issue 18's targets into their own section of BENCHMARKS.md
 * ({@link #TARGETS}). Options: --size 1024, --checkpoints 10, --restores 2, --no-write.
 */
public final class DedupOperatorBenchmark {
  private static final long STARTED = System.nanoTime();
  private static final double MIB = 1 << 20;
  private static final String DEDUP_STORAGE = "bench-dedup";
  static final String SECTION_HEADING = "## Through the operator (bench/dedup-operator.sh)";

  private DedupOperatorBenchmark() {}

  /** One checkpoint: seconds from create to Completed, the agent's own seconds, frozen seconds, bytes added. */
  record Taken(String name, double seconds, double agentSeconds, double frozenSeconds, long sizeBytes,
      long newBytes) {}

  public static void main(String[] args) throws Exception {
    BenchOptions options = BenchOptions.parse(args, Map.of("--size", "1024", "--checkpoints", "10", "--restores", "2"));
    int size = options.integer("--size");
    int series = options.integer("--checkpoints");
    int restores = options.integer("--restores");
    boolean write = options.write();
    Path repo = TestControlPlane.repoRoot();
    Path work = Benchmark.freshWorkFolder(repo, "bench-dedup");
    Criu criu = Benchmark.usableCriu();
    String started = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();

    List<Taken> taken = new ArrayList<>();
    Samples wholeRestore = new Samples();
    Samples dedupRestore = new Samples();
    Samples bareFrozen = new Samples();
    Map<String, String> machine = Machine.describe(criu);
    try (BenchEnvironment env = BenchEnvironment.start(work, criu)) {
      Thread stopOnInterrupt = new Thread(env::close, "bench-stop");
      Runtime.getRuntime().addShutdownHook(stopOnInterrupt);
      createDedupStorage(env);
      Path generation = work.resolve("generation");
      try (Workloads.Workload memchurn = Workloads.startInPidNamespace("memchurn", Integer.toString(size),
          generation.toString())) {
        env.workloads.add(memchurn);
        awaitGeneration(generation, 0);
        taken.add(checkpoint(env, "whole", memchurn.pid(), BenchEnvironment.STORAGE));
        int gen = 0;
        for (int i = 1; i <= series; i++) {
          if (i > 1) {
            Workloads.signal(memchurn.pid(), "USR1"); // 5% in 1 MiB blocks
            awaitGeneration(generation, ++gen);
          }
          taken.add(checkpoint(env, "dedup-" + i, memchurn.pid(), DEDUP_STORAGE));
          if (i > 1) { // the same memory dumped by a bare criu: what the frozen time is held against
            Path dir = work.resolve("bare-" + i);
            ProcessCheckpointRun.settleDisk();
            bareFrozen.add(env.byHand.dump(memchurn.pid(), dir).stats().frozenTimeMicros() / 1e6);
            ProcessCheckpointRun.deleteDirectory(dir);
          }
        }
        Workloads.signal(memchurn.pid(), "USR2"); // a new mapping of 1/16
        awaitGeneration(generation, ++gen);
        taken.add(checkpoint(env, "dedup-mapped", memchurn.pid(), DEDUP_STORAGE));
        Workloads.signal(memchurn.pid(), "HUP"); // 5% of the pages, scattered
        awaitGeneration(generation, ++gen);
        taken.add(checkpoint(env, "dedup-scattered", memchurn.pid(), DEDUP_STORAGE));
        for (int r = 0; r < restores; r++) {
          for (int i = 0; i < 2; i++) {
            boolean wholeFirst = r % 2 == 0;
            if (wholeFirst == (i == 0)) {
              wholeRestore.add(restore(env, "whole", "whole-" + r));
            } else {
              dedupRestore.add(restore(env, "dedup-" + series, "dedup-" + r));
            }
          }
        }
        env.workloads.remove(memchurn);
      }
      Runtime.getRuntime().removeShutdownHook(stopOnInterrupt);
    }
    machine.put("load average at end", Machine.loadAverage());
    String section = section(size, series, taken, wholeRestore, dedupRestore, bareFrozen, machine, started,
        (System.nanoTime() - STARTED) / 60e9);
    System.out.println();
    System.out.print(section);
    String targets = targets(size, series, taken, wholeRestore, dedupRestore, started);
    System.out.println();
    System.out.print(targets);
    if (write) {
      Path page = repo.resolve("bench/dedup.md");
      String text = Files.readString(page);
      int at = text.indexOf(SECTION_HEADING);
      Files.writeString(page, (at < 0 ? text + "\n" : text.substring(0, at)) + section);
      Path benchmarks = repo.resolve("BENCHMARKS.md");
      Files.writeString(benchmarks, TARGETS.put(Files.readString(benchmarks), targets, JobsBenchmark.SECTION_HEADING));
      System.out.println("\nwritten: the last section of bench/dedup.md, and issue 18's targets in BENCHMARKS.md");
    }
  }

  /** Where BENCHMARKS.md holds issue 18's targets; bench/run.sh carries it along when it rewrites the page. */
  static final GeneratedSection TARGETS = new GeneratedSection("bench/dedup-operator.sh");

  /** One of issue 18's targets: what was measured, and whether it is met (null: measured and reported only). */
  record TargetRow(String target, String measured, String goal, Boolean met) {}

  /** Issue 18's target table, each figure against its target, from this run. */
  static String targets(int size, int series, List<Taken> taken, Samples wholeRestore, Samples dedupRestore,
      String started) {
    Taken whole = taken.get(0);
    Taken first = taken.get(1);
    Taken second = taken.get(2);
    Taken mapped = taken.get(taken.size() - 2);
    Taken scattered = taken.get(taken.size() - 1);
    long stored = taken.subList(1, 1 + series).stream().mapToLong(Taken::newBytes).sum();
    double storedLimit = 1.6 * size * MIB;
    double frozen = median(taken.subList(1, 1 + series)) / whole.frozenSeconds();
    double restore = dedupRestore.median() / wholeRestore.median();
    List<TargetRow> rows = List.of(
        new TargetRow("second checkpoint, 5% of memory rewritten in 1 MiB blocks: bytes uploaded",
            percent(second.newBytes(), second.sizeBytes()), "≤ 8%", second.newBytes() <= 0.08 * second.sizeBytes()),
        new TargetRow("second checkpoint, 5% rewritten: time against the whole archive's",
            String.format(Locale.ROOT, "%.2f× (%.1f s vs %.1f s; %.2f× the first deduplicated one's %.1f s)",
                second.seconds() / whole.seconds(), second.seconds(), whole.seconds(),
                second.seconds() / first.seconds(), first.seconds()),
            "≤ 0.35×", second.seconds() <= 0.35 * whole.seconds()),
        new TargetRow("second checkpoint after a new mapping of 1/16 (" + size / 16 + " MiB): bytes uploaded",
            percent(mapped.newBytes(), mapped.sizeBytes()), "≤ 12%", mapped.newBytes() <= 0.12 * mapped.sizeBytes()),
        new TargetRow(series + " checkpoints, 5% changed between each: stored in all (sum of what each added)",
            String.format(Locale.ROOT, "%.0f MiB (%.2f× the memory)", stored / MIB, stored / (size * MIB)),
            String.format(Locale.ROOT, "≤ %.0f MiB (1.6 GiB per GiB)", storedLimit / MIB), stored <= storedLimit),
        new TargetRow("second checkpoint, 5% of pages rewritten at scattered places: bytes uploaded",
            percent(scattered.newBytes(), scattered.sizeBytes()) + " with 128 KiB chunks (bench/analysis.md: why)",
            "measured and reported", null),
        new TargetRow("restore of checkpoint " + series + " of the series against the whole archive's",
            String.format(Locale.ROOT, "%.2f× (%s s vs %s s)", restore, range(dedupRestore), range(wholeRestore)),
            "≤ 1.05×", restore <= 1.05),
        new TargetRow("frozen time, deduplicated (median of the series) against the whole archive's",
            String.format(Locale.ROOT, "%.2f× (%.3f s vs %.3f s)", frozen, median(taken.subList(1, 1 + series)),
                whole.frozenSeconds()),
            "≤ 1.05× (the table above compares whole archives with bare CRIU)", frozen <= 1.05));
    StringBuilder md = new StringBuilder("## Issue 18's targets: deduplicated checkpoints (bench/dedup-operator.sh)\n\n");
    md.append("Started ").append(started).append(", ").append(size).append(" MiB memchurn through the operator and the"
        + " agent into s3proxy; each figure against a whole archive of the same process in the same run. Details:"
        + " bench/dedup.md, \"Through the operator\".\n\n");
    md.append("| case | measured | target | met |\n|---|---|---|---|\n");
    for (TargetRow row : rows) {
      md.append("| ").append(row.target()).append(" | ").append(row.measured()).append(" | ").append(row.goal())
          .append(" | ").append(row.met() == null ? "reported" : row.met() ? "yes" : "**missed**").append(" |\n");
    }
    return md.toString();
  }

  private static String percent(long part, long whole) {
    return String.format(Locale.ROOT, "%.1f%%", 100.0 * part / whole);
  }

  private static void createDedupStorage(BenchEnvironment env) throws InterruptedException {
    CheckpointStorage storage = env.client.resources(CheckpointStorage.class).withName(BenchEnvironment.STORAGE).get();
    CheckpointStorage dedup = new CheckpointStorage();
    dedup.setMetadata(new ObjectMetaBuilder().withName(DEDUP_STORAGE).build());
    dedup.setSpec(storage.getSpec());
    dedup.getSpec().isDefault = false;
    dedup.getSpec().deduplication = true;
    env.client.resource(dedup).create();
    BenchEnvironment.await("storage " + DEDUP_STORAGE + " to be Available", () -> {
      CheckpointStorage s = env.client.resources(CheckpointStorage.class).withName(DEDUP_STORAGE).get();
      return s != null && s.getStatus() != null && "Available".equals(s.getStatus().phase);
    });
  }

  private static void awaitGeneration(Path file, int generation) throws InterruptedException {
    BenchEnvironment.await("memchurn generation " + generation, () -> {
      try {
        return Files.readString(file).strip().equals(Integer.toString(generation));
      } catch (java.io.IOException e) {
        return false;
      }
    });
  }

  private static Taken checkpoint(BenchEnvironment env, String name, long pid, String storage) throws Exception {
    Benchmark.progress("checkpoint " + name);
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(BenchEnvironment.NODE, (int) pid)));
    c.getSpec().storage = storage;
    long start = System.nanoTime();
    Checkpoint done = settle(env.checkpoints, env, c);
    double seconds = (System.nanoTime() - start) / 1e9;
    var status = done.getStatus();
    if (status.phase != CheckpointPhase.Completed) {
      throw new IllegalStateException("checkpoint " + name + " " + status.phase + ": " + status.reason + " "
          + status.message);
    }
    return new Taken(name, seconds, status.stats.totalTimeMillis / 1e3, status.stats.frozenTimeMicros / 1e6,
        status.archive.sizeBytes, status.archive.newBytes);
  }

  private static double restore(BenchEnvironment env, String checkpoint, String name) throws Exception {
    Benchmark.progress("restore " + checkpoint + " as " + name);
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    long start = System.nanoTime();
    Restore done = settle(env.restores, env, r);
    double seconds = (System.nanoTime() - start) / 1e9;
    if (done.getStatus().phase != RestorePhase.Completed) {
      throw new IllegalStateException("restore " + name + " " + done.getStatus().phase + ": "
          + done.getStatus().reason + " " + done.getStatus().message);
    }
    int restored = done.getStatus().restoredPid;
    Workloads.kill(restored); // the agent's CRIU reaps it
    BenchEnvironment.await("restored PID " + restored + " to end", () -> !Workloads.isAlive(restored));
    return seconds;
  }

  private static <T extends HasMetadata> T settle(Settlements<T> settlements, BenchEnvironment env, T resource)
      throws Exception {
    var settled = settlements.future(resource.getMetadata().getName());
    env.client.resource(resource).create();
    return settled.get(10, TimeUnit.MINUTES).resource();
  }

  private static String section(int size, int series, List<Taken> taken, Samples wholeRestore, Samples dedupRestore,
      Samples bareFrozen, Map<String, String> machine, String started, double minutes) {
    Taken whole = taken.get(0);
    Taken first = taken.get(1);
    StringBuilder md = new StringBuilder(SECTION_HEADING).append("\n\n");
    md.append("Started ").append(started).append(String.format(Locale.ROOT, ", took %.1f minutes; ", minutes))
        .append("load average at the end ").append(machine.get("load average at end")).append(". memchurn with ")
        .append(size).append(" MiB of incompressible memory, checkpointed by the operator and the agent into s3proxy"
            + " (`leaveRunning`), each checkpoint's own bytes from its status (`newBytes`): a whole archive first,"
            + " then a deduplicated series on a storage of its own.\n\n");
    md.append("| checkpoint | seconds (create → Completed) | agent seconds | frozen seconds | logical MiB | new MiB |"
        + " new / logical |\n|---|---|---|---|---|---|---|\n");
    long stored = 0;
    for (Taken t : taken) {
      if (t != whole && !t.name().equals("dedup-mapped") && !t.name().equals("dedup-scattered")) {
        stored += t.newBytes();
      }
      md.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f | %.3f | %.0f | %.1f | %.1f%% |\n", t.name(),
          t.seconds(), t.agentSeconds(), t.frozenSeconds(), t.sizeBytes() / MIB, t.newBytes() / MIB,
          100.0 * t.newBytes() / t.sizeBytes()));
    }
    Taken second = taken.get(2);
    md.append(String.format(Locale.ROOT, "%nAgainst the issue's targets (measured in this run):%n%n"
            + "- second checkpoint, 5%% rewritten in 1 MiB blocks: uploads %.1f%% of the bytes (target ≤ 8%%), takes"
            + " %.2f× the time of the first deduplicated one and %.2f× that of the whole archive (target ≤ 0.35×);%n"
            + "- after a new mapping of 1/16: uploads %.1f%% (target ≤ 12%%);%n"
            + "- %d checkpoints, 5%% changed between each: %.0f MiB stored in all, %.2f× one checkpoint's memory"
            + " (target ≤ 1.6 GiB for 1 GiB);%n"
            + "- 5%% of pages rewritten at scattered places: uploads %.1f%% (128 KiB chunks; bench/dedup.md above"
            + " says why);%n"
            + "- restore of the %dth: %s s against %s s for the whole archive, %.2f× (target ≤ 1.05×);%n"
            + "- frozen time: %.3f s deduplicated (median of checkpoints 2 to %d, cut while CRIU dumps) against"
            + " %s s for a bare criu dump of the same memory after each of them, %.2f× (target ≤ 1.05×);"
            + " %.3f s for the whole archive.%n",
        100.0 * second.newBytes() / second.sizeBytes(), second.seconds() / first.seconds(),
        second.seconds() / whole.seconds(), 100.0 * taken.get(taken.size() - 2).newBytes()
            / taken.get(taken.size() - 2).sizeBytes(),
        series, stored / MIB, stored / (double) first.sizeBytes(),
        100.0 * taken.get(taken.size() - 1).newBytes() / taken.get(taken.size() - 1).sizeBytes(),
        series, range(dedupRestore), range(wholeRestore), dedupRestore.median() / wholeRestore.median(),
        median(taken.subList(2, 1 + series)), series, range(bareFrozen),
        median(taken.subList(2, 1 + series)) / bareFrozen.median(), whole.frozenSeconds()));
    return md.toString();
  }

  private static double median(List<Taken> series) {
    Samples frozen = new Samples();
    series.forEach(t -> frozen.add(t.frozenSeconds()));
    return frozen.median();
  }

  private static String range(Samples s) {
    return String.format(Locale.ROOT, "%.2f (%.2f–%.2f)", s.median(), s.min(), s.max());
  }
}
