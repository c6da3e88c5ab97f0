package dev.stasis.criu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Runs one CRIU binary. Every call starts CRIU as a child process with its log in the work
 * directory; failures become {@link CriuException}s whose reason says what went wrong.
 */
public final class Criu {
  /** Older CRIUs cannot dump on current kernels (vDSO layout, ENVIRONMENT.md). */
  public static final CriuVersion MINIMUM_VERSION = new CriuVersion(4, 0, 0);

  private static final Duration SHORT_COMMAND_TIMEOUT = Duration.ofSeconds(30);
  public static final String NO_SPACE = "No space left on device";
  private static final String RESTORE_DONE = "Restore finished successfully";
  /** In a dump's or restore's work folder: the PID and start time of the CRIU working there. */
  static final String RUNNING_FILE = "criu.running";
  private static final String CPUINFO_IMAGE = "cpuinfo.img";
  private static final String CPUINFO_DUMP_LOG = "cpuinfo-dump.log";
  private static final String CPUINFO_CHECK_LOG = "cpuinfo-check.log";
  /**
   * Dumps run ahead of the node's other work, as root may: the workload is frozen only while CRIU
   * runs, and on a busy node CRIU competes for the CPU with other pods (and, when the tree stays
   * frozen until stored, with the archive upload that overlaps the dump at nice 10).
   */
  public static final int DUMP_NICE = -5;
  /** coreutils' nice starts CRIU at that priority, so that whatever CRIU forks has it too. */
  private static final Optional<Path> NICE = Stream.of("/usr/bin/nice", "/bin/nice").map(Path::of)
      .filter(Files::isExecutable).findFirst();

  private final Path executable;
  private final Map<String, String> environment;
  /** Every job checks the version; asking CRIU each time costs a process start per job. */
  private volatile KnownVersion knownVersion;

  /** The version of the executable as it was when asked: same file, same modification time and size. */
  private record KnownVersion(Object fileKey, FileTime modified, long size, CriuVersion version) {
    static Optional<BasicFileAttributes> attributesOf(Path executable) {
      try {
        return Optional.of(Files.readAttributes(executable, BasicFileAttributes.class));
      } catch (IOException e) {
        return Optional.empty();
      }
    }

    boolean isOf(BasicFileAttributes now) {
      return Objects.equals(fileKey, now.fileKey()) && modified.equals(now.lastModifiedTime())
          && size == now.size();
    }
  }

  public Criu(Path executable, Map<String, String> environment) {
    this.executable = executable;
    this.environment = Map.copyOf(environment);
  }

  public Path executable() {
    return executable;
  }

  public boolean isInstalled() {
    return Files.isExecutable(executable);
  }

  /**
   * The installed version, or empty when CRIU is missing or does not answer. Asked again only when
   * the executable changed.
   */
  public Optional<CriuVersion> version() {
    Optional<BasicFileAttributes> attributes = KnownVersion.attributesOf(executable);
    KnownVersion known = knownVersion;
    if (attributes.isPresent() && known != null && known.isOf(attributes.get())) {
      return Optional.of(known.version());
    }
    try {
      CommandResult r = runShort(List.of("--version"));
      if (r.exitCode != 0) {
        return Optional.empty();
      }
      CriuVersion version = CriuVersion.parse(r.output);
      attributes.ifPresent(a -> knownVersion = new KnownVersion(a.fileKey(), a.lastModifiedTime(), a.size(), version));
      return Optional.of(version);
    } catch (IOException | IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /** {@code criu check}: whether this kernel and CRIU can checkpoint at all. */
  public CheckResult check() {
    try {
      CommandResult r = runShort(List.of("check"));
      String lastLine = lastLine(r.output);
      return new CheckResult(r.exitCode == 0, lastLine);
    } catch (IOException e) {
      return new CheckResult(false, e.getMessage());
    }
  }

  /**
   * The optional kernel features this CRIU knows about ({@code criu --help} lists them), each
   * checked with {@code criu check --feature}: which this node has and which it lacks. Empty when
   * CRIU does not run or lists none.
   */
  public Features features() {
    List<String> known;
    try {
      known = FeatureList.parse(runShort(List.of("--help")).output);
    } catch (IOException e) {
      return new Features(List.of(), List.of());
    }
    List<String> present = new ArrayList<>();
    List<String> missing = new ArrayList<>();
    for (String feature : known) {
      boolean has;
      try {
        has = runShort(List.of("check", "--feature", feature)).exitCode == 0;
      } catch (IOException e) {
        has = false;
      }
      (has ? present : missing).add(feature);
    }
    return new Features(present, missing);
  }

  /**
   * {@code criu cpuinfo dump}: this node's CPU as CRIU describes it (the cpuinfo.img image), so
   * that another node can later check with {@link #checkCpuinfo} whether it can run what this one ran.
   */
  public byte[] dumpCpuinfo(Path dir) throws CriuException, IOException {
    Files.createDirectories(dir);
    CommandResult r = runShort(List.of("cpuinfo", "dump", "--images-dir", dir.toString(),
        "--log-file", CPUINFO_DUMP_LOG, "-v4"));
    if (r.exitCode != 0) {
      CriuLog log = new CriuLog(dir.resolve(CPUINFO_DUMP_LOG));
      throw new CriuException("CriuCpuinfoFailed",
          "criu cpuinfo dump failed: " + log.firstError().orElse(lastLine(r.output)), log.tail());
    }
    return Files.readAllBytes(dir.resolve(CPUINFO_IMAGE));
  }

  /**
   * {@code criu cpuinfo check}: can this node's CPU run what the CPU described by {@code image}
   * ran? Empty when it can, else CRIU's objection. {@code strict} compares every capability bit
   * ({@code --cpu-cap all}) instead of CRIU's default (FPU state and instruction sets).
   */
  public Optional<String> checkCpuinfo(byte[] image, Path dir, boolean strict) throws CriuException, IOException {
    Files.createDirectories(dir);
    Files.write(dir.resolve(CPUINFO_IMAGE), image);
    List<String> args = new ArrayList<>(List.of("cpuinfo", "check", "--images-dir", dir.toString(),
        "--log-file", CPUINFO_CHECK_LOG, "-v4"));
    if (strict) {
      args.add("--cpu-cap=all");
    }
    CommandResult r = runShort(args);
    CriuLog log = new CriuLog(dir.resolve(CPUINFO_CHECK_LOG));
    if (r.exitCode == 0) {
      return Optional.empty();
    }
    if (log.isEmpty()) {
      throw new CriuException("CriuMissing", "criu cpuinfo check did not run: " + lastLine(r.output), "");
    }
    return Optional.of(log.firstError().orElse("exit code " + r.exitCode));
  }

  /** Fails with a reason a person can act on unless this CRIU can be used at all. */
  public CriuVersion requireUsable() throws CriuException {
    if (!isInstalled()) {
      throw new CriuException("CriuMissing",
          "CRIU is not installed at " + executable + ": install CRIU " + MINIMUM_VERSION
              + " or newer on the node (scripts/install-criu.sh does it) or point the agent's --criu at it",
          "");
    }
    CriuVersion version = version().orElseThrow(() -> new CriuException("CriuMissing",
        "CRIU at " + executable + " does not run (criu --version failed): reinstall it", ""));
    if (!version.isAtLeast(MINIMUM_VERSION)) {
      throw new CriuException("CriuTooOld",
          "CRIU " + version + " at " + executable + " is too old: Stasis needs CRIU " + MINIMUM_VERSION
              + " or newer (4.2 or newer on kernels 6.16 and later)",
          "");
    }
    return version;
  }

  /**
   * Starts {@code criu dump}. With {@link DumpOptions#holdFrozen()} CRIU then holds the tree frozen
   * after the dump until the agent decides ({@link RunningDump#decide}); the returned dump must be
   * closed either way.
   */
  public RunningDump startDump(DumpOptions options) throws CriuException, IOException {
    Files.createDirectories(options.imagesDir());
    Files.createDirectories(options.workDir());
    PostDumpHook hook = options.holdFrozen() ? PostDumpHook.prepare(options.workDir()) : null;
    try {
      return new RunningDump(start(options.arguments(), options.workDir(), "dump.out", DUMP_NICE), options, hook);
    } catch (CriuException | IOException | RuntimeException e) {
      if (hook != null) {
        hook.close();
      }
      throw e;
    }
  }

  /** A dump that leaves the tree running at once, as bare {@code criu dump --leave-running} does. */
  public DumpResult dump(DumpOptions options) throws CriuException, IOException {
    if (options.holdFrozen()) {
      throw new IllegalArgumentException("a dump that holds its tree frozen needs a decision: use startDump");
    }
    try (RunningDump dump = startDump(options)) {
      return dump.awaitExit();
    }
  }

  /**
   * Restores a tree and returns once it runs. CRIU stays its parent (see {@link RestoreOptions}), so
   * the returned {@link RestoredTree} tells when the tree exits.
   */
  public RestoredTree restore(RestoreOptions options) throws CriuException, IOException {
    Files.createDirectories(options.workDir());
    CriuLog log = new CriuLog(options.workDir().resolve(RestoreOptions.LOG_FILE));
    Path pidFile = options.workDir().resolve(RestoreOptions.PID_FILE);
    Process criu = start(options.arguments(), options.workDir(), "restore.out", 0);
    long deadline = System.nanoTime() + options.timeout().toNanos();
    try {
      while (true) {
        Optional<Integer> pid = readPid(pidFile);
        if (pid.isPresent() && log.contains(RESTORE_DONE)) {
          return new RestoredTree(pid.get(), criu, log);
        }
        if (!criu.isAlive()) {
          if (log.contains(RESTORE_DONE) && pid.isPresent()) {
            return new RestoredTree(pid.get(), criu, log); // restored, and already finished
          }
          throw restoreFailure(log, criu.exitValue());
        }
        if (System.nanoTime() > deadline) {
          stopRestore(criu);
          throw new CriuException("CriuTimeout",
              "criu restore did not finish within " + options.timeout().toSeconds() + "s", log.tail());
        }
        Thread.sleep(20);
      }
    } catch (InterruptedException e) {
      stopRestore(criu);
      Thread.currentThread().interrupt();
      throw new CriuException("Interrupted", "the agent was stopped while criu restore ran", log.tail());
    }
  }

  private static CriuException restoreFailure(CriuLog log, int exitCode) {
    String error = log.firstError().orElse("exit code " + exitCode);
    if (log.contains("File exists") && log.contains("Can't fork")) {
      return new CriuException("PidInUse",
          "the checkpoint's PIDs are in use on this node (" + error
              + "): the original process or another one still holds them; stop it, or restore on another node",
          log.tail());
    }
    return new CriuException("CriuRestoreFailed", "criu restore failed: " + error, log.tail());
  }

  private static Optional<Integer> readPid(Path pidFile) {
    try {
      String text = Files.readString(pidFile).trim();
      return text.isEmpty() ? Optional.empty() : Optional.of(Integer.parseInt(text));
    } catch (IOException | NumberFormatException e) {
      return Optional.empty();
    }
  }

  /**
   * Starts a dump or restore with its output in {@code workDir}, and notes there which process it
   * is: CRIU outlives an agent killed meanwhile, and the next agent must not act while it runs.
   * Where {@code nice} cannot be set (no nice, not root), CRIU runs at the agent's priority.
   */
  private Process start(List<String> args, Path workDir, String outputFile, int nice)
      throws CriuException, IOException {
    List<String> command = new ArrayList<>();
    if (nice != 0 && NICE.isPresent()) {
      command.addAll(List.of(NICE.get().toString(), "-n", Integer.toString(nice))); // it execs CRIU: same PID
    }
    command.add(executable.toString());
    command.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(workDir.resolve(outputFile).toFile());
    pb.environment().putAll(environment);
    Process criu;
    try {
      criu = pb.start();
    } catch (IOException e) {
      throw new CriuException("CriuMissing", "cannot run CRIU at " + executable + ": " + e.getMessage(), "");
    }
    Files.writeString(workDir.resolve(RUNNING_FILE),
        criu.pid() + " " + criu.info().startInstant().map(Instant::toEpochMilli).orElse(0L) + "\n");
    return criu;
  }

  /**
   * The CRIU a dead agent started in {@code workDir}, if it still runs. The start time recorded
   * next to its PID tells it apart from an unrelated process that got the PID later. A CRIU that
   * ended is a zombie until someone reaps it, which an init that does not reap orphans never does.
   */
  public static Optional<ProcessHandle> stillRunningIn(Path workDir) {
    return runningNote(workDir).flatMap(note -> ProcessHandle.of(note.pid()).filter(ProcessHandle::isAlive)
        .filter(p -> startMillis(p) == note.startedMillis())
        .filter(p -> !isZombie(p.pid())));
  }

  private record RunningNote(long pid, long startedMillis) {}

  /** Empty when CRIU never started there, or the note is unreadable. */
  private static Optional<RunningNote> runningNote(Path workDir) {
    try {
      String[] recorded = Files.readString(workDir.resolve(RUNNING_FILE)).trim().split(" ");
      return Optional.of(new RunningNote(Long.parseLong(recorded[0]), Long.parseLong(recorded[1])));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /** Whether a CRIU was ever started in {@code workDir} (its note is there). */
  public static boolean startedIn(Path workDir) {
    return runningNote(workDir).isPresent();
  }

  private static long startMillis(ProcessHandle p) {
    return p.info().startInstant().map(Instant::toEpochMilli).orElse(-1L);
  }

  private static boolean isZombie(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      return stat.charAt(stat.lastIndexOf(')') + 2) == 'Z';
    } catch (IOException | StringIndexOutOfBoundsException e) {
      return true; // gone while we looked
    }
  }

  /** Whether the restore CRIU ran in {@code workDir} restored its tree ("Restore finished successfully"). */
  public static boolean restoreFinishedIn(Path workDir) {
    return new CriuLog(workDir.resolve(RestoreOptions.LOG_FILE)).contains(RESTORE_DONE);
  }

  /** The root PID CRIU wrote when its restore in {@code workDir} was done, whether or not that tree still runs. */
  public static Optional<Integer> restoredPidIn(Path workDir) {
    return readPid(workDir.resolve(RestoreOptions.PID_FILE));
  }

  /**
   * The root PID of a tree a dead agent's CRIU restored in {@code workDir}, if that restore
   * finished and the tree still runs: the PID CRIU wrote, of a process that started after that
   * CRIU did (not one that got the PID after the tree ended).
   */
  public static Optional<Integer> restoredIn(Path workDir) {
    if (!restoreFinishedIn(workDir)) {
      return Optional.empty();
    }
    long criuStarted = runningNote(workDir).map(RunningNote::startedMillis).orElse(Long.MAX_VALUE);
    // Start times are whole clock ticks after boot: a second of slack for the rounding.
    return readPid(workDir.resolve(RestoreOptions.PID_FILE))
        .filter(pid -> ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
            .filter(p -> startMillis(p) >= criuStarted - 1000).isPresent() && !isZombie(pid));
  }

  private CommandResult runShort(List<String> args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(executable.toString());
    command.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
    pb.environment().putAll(environment);
    Process p = pb.start();
    try {
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(SHORT_COMMAND_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
        stop(p);
        throw new IOException("criu " + String.join(" ", args) + " did not answer within " + SHORT_COMMAND_TIMEOUT);
      }
      return new CommandResult(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    } catch (InterruptedException e) {
      stop(p);
      Thread.currentThread().interrupt();
      throw new IOException("interrupted");
    }
  }

  /** CRIU releases a half-dumped tree when it ends, so SIGTERM first, then SIGKILL. */
  static void stop(Process p) {
    p.destroy();
    try {
      if (!p.waitFor(5, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  /**
   * CRIU ignores SIGTERM while restoring, and a half-restored child can spin forever on a damaged
   * image; killing CRIU alone would leave it running under PID 1. So: the children first, then CRIU.
   */
  private static void stopRestore(Process criu) {
    criu.descendants().forEach(ProcessHandle::destroyForcibly);
    criu.destroyForcibly();
    try {
      criu.waitFor(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static String lastLine(String output) {
    String[] lines = output.strip().split("\n");
    return lines.length == 0 ? "" : lines[lines.length - 1].strip();
  }

  private record CommandResult(int exitCode, String output) {}

  public record CheckResult(boolean passed, String message) {}

  /** CRIU's optional features, split by whether this node has them. */
  public record Features(List<String> present, List<String> missing) {}

  public record DumpResult(DumpStats stats, List<String> arguments) {}
}
