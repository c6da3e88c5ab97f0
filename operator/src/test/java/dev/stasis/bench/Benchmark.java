package dev.stasis.bench;

import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.testing.TestControlPlane;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code bench/run.sh}: Stasis against the by-hand CRIU pipeline, measured in one run, written to
 * BENCHMARKS.md and bench/results.json. Options (all optional):
 *
 * <pre>
 *   --sizes 64,256,1024,4096   memory of the checkpointed process, MiB ("none": control plane only)
 *   --repetitions 5            repetitions below 1 GiB
 *   --large-repetitions 3      repetitions at 1 GiB up to 4 GiB (each takes half a minute)
 *   --huge-repetitions 1       repetitions at 4 GiB and above (each takes two minutes)
 *   --checkpoints 1000         Checkpoints created at once in the control-plane run
 *   --control-plane-repetitions 3
 *   --no-write                 print the table only; leave BENCHMARKS.md and results.json alone
 *   --frozen-only              frozen time only: Stasis' checkpoint against a bare criu dump, no restores,
 *                              no control-plane or placement runs (many repetitions in little time);
 *                              implies --no-write
 * </pre>
 */
public final class Benchmark {
  private static final long STARTED = System.nanoTime();

  private Benchmark() {}

  public static void main(String[] args) throws Exception {
    Options options = Options.parse(args);
    Path repo = TestControlPlane.repoRoot();
    Path work = freshWorkFolder(repo, "bench");
    Criu criu = usableCriu();
    String started = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    Map<String, String> machine = Machine.describe(criu);

    List<Figure> figures = new ArrayList<>();
    try (BenchEnvironment env = BenchEnvironment.start(work, criu)) {
      // Ctrl-C still stops the API server, the S3 server and the roles.
      Thread stopOnInterrupt = new Thread(env::close, "bench-stop");
      Runtime.getRuntime().addShutdownHook(stopOnInterrupt);
      // The roles are long-running processes: the first checkpoint and restore of a fresh JVM
      // load and compile their code, which no later one pays. One unmeasured round does that.
      progress("warming up: one checkpoint and restore, not measured");
      new ProcessCheckpointRun(env, "warmup", 64, false, false).run(1);
      for (int mib : options.sizes()) {
        int repetitions = mib >= 4096 ? options.hugeRepetitions()
            : mib >= 1024 ? options.largeRepetitions() : options.repetitions();
        for (boolean compressible : new boolean[] {false, true}) {
          figures.addAll(new ProcessCheckpointRun(env, "bench", mib, compressible, options.frozenOnly())
              .run(repetitions));
        }
      }
      if (!options.frozenOnly() && options.controlPlaneRepetitions() > 0) {
        figures.addAll(new ControlPlaneRun(env, options.checkpoints()).run(options.controlPlaneRepetitions()));
      }
      Runtime.getRuntime().removeShutdownHook(stopOnInterrupt);
    }
    if (!options.frozenOnly()) {
      progress("placing 1000 Restores over 500 NodeProfiles");
      figures.addAll(new PlacementRun(500, 1000).run(5));
    }
    machine.put("load average at end", Machine.loadAverage());

    double minutes = (System.nanoTime() - STARTED) / 60e9;
    Report report = new Report(figures, machine, started, minutes);
    System.out.println();
    System.out.print(report.table());
    System.out.println();
    System.out.print(report.details());
    if (options.write()) {
      // bench/dedup-operator.sh's targets and bench/jobs.sh's figures (the last section) stay on the page
      // until they run again.
      Path page = repo.resolve("BENCHMARKS.md");
      String dedupTargets = DedupOperatorBenchmark.TARGETS.in(Files.exists(page) ? Files.readString(page) : "")
          .map(section -> "\n" + section).orElse("");
      Path jobs = repo.resolve("bench/jobs.md");
      report.writeMarkdown(page, Files.readString(repo.resolve("bench/analysis.md")) + dedupTargets
          + (Files.exists(jobs) ? "\n" + Files.readString(jobs) : ""));
      report.writeJson(repo.resolve("bench/results.json"));
      System.out.println("\nwritten: BENCHMARKS.md, bench/results.json");
    }
  }

  static void progress(String message) {
    System.out.printf("[%5.1fs] %s%n", (System.nanoTime() - STARTED) / 1e9, message);
  }

  /** {@code operator/target/<name>}, emptied: each run starts from nothing. */
  static Path freshWorkFolder(Path repo, String name) throws Exception {
    Path work = repo.resolve("operator/target/" + name);
    deleteRecursively(work);
    Files.createDirectories(work);
    return work;
  }

  /** The CRIU the agent would run, checked to work on this machine before anything is measured. */
  static Criu usableCriu() throws Exception {
    Criu criu = new Criu(Main.criuPath(null), Map.of());
    criu.requireUsable();
    return criu;
  }

  static void deleteRecursively(Path dir) throws Exception {
    if (!Files.exists(dir)) {
      return;
    }
    try (var paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  record Options(List<Integer> sizes, int repetitions, int largeRepetitions, int hugeRepetitions, int checkpoints,
      int controlPlaneRepetitions, boolean write, boolean frozenOnly) {
    static Options parse(String[] args) {
      BenchOptions options = BenchOptions.parse(args, Map.of("--sizes", "64,256,1024,4096", "--repetitions", "5",
          "--large-repetitions", "3", "--huge-repetitions", "1", "--checkpoints", "1000",
          "--control-plane-repetitions", "3"), Set.of("--frozen-only"));
      boolean frozenOnly = options.flag("--frozen-only");
      // --frozen-only measures one figure, not the ones BENCHMARKS.md holds: it writes nothing.
      return new Options(options.sizes("--sizes"), options.integer("--repetitions"),
          options.integer("--large-repetitions"), options.integer("--huge-repetitions"), options.integer("--checkpoints"),
          options.integer("--control-plane-repetitions"), options.write() && !frozenOnly, frozenOnly);
    }
  }
}
