package dev.stasis.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import picocli.AutoComplete;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;

/**
 * {@code stasis operator | agent | local | inspect}: one jar, two roles, both together for one
 * machine, and a look inside a stored checkpoint. Every command answers {@code --help}, refuses
 * flags it does not know (naming the closest one it does) and checks values before it starts.
 */
@Command(name = "stasis", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
    description = "Checkpoints workloads on Kubernetes with CRIU, keeps them in object storage and restores them"
        + " on nodes that can run them.",
    subcommands = {OperatorCommand.class, AgentCommand.class, LocalCommand.class, InspectCommand.class,
        CommandLine.HelpCommand.class})
public final class Main implements Runnable {
  static final int OPERATOR_METRICS_PORT = 8080;
  static final int AGENT_METRICS_PORT = 8081;

  /** Set once a command that runs until SIGTERM was stopped: the JVM is exiting already. */
  private static volatile boolean shutDown;

  @CommandLine.Spec
  CommandLine.Model.CommandSpec spec;

  public static void main(String[] args) {
    int exit = commandLine().execute(args);
    if (!shutDown) {
      System.exit(exit);
    }
  }

  /** The whole command line, as {@code main} runs it. */
  public static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new Main());
    cli.addSubcommand("completion", new AutoComplete.GenerateCompletion());
    cli.getSubcommands().get("completion").getCommandSpec().usageMessage().description(
        "Prints a bash (and zsh) completion script for stasis: source <(stasis completion)");
    return cli;
  }

  /** {@code stasis} alone: what there is to run. */
  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "say which command to run");
  }

  /** An explicit path, else the CRIU scripts/install-criu.sh provides, else criu on the PATH. */
  public static Path criuPath(Path explicit) {
    if (explicit != null) {
      return explicit;
    }
    String cache = System.getenv().getOrDefault("STASIS_CACHE", System.getProperty("user.home") + "/.cache/stasis");
    for (Path candidate : new Path[] {Path.of(cache, "bin", "criu"), Path.of(".stasis", "bin", "criu")}) {
      if (Files.isExecutable(candidate)) {
        return candidate.toAbsolutePath();
      }
    }
    for (String dir : System.getenv().getOrDefault("PATH", "/usr/sbin:/usr/bin").split(":")) {
      Path candidate = Path.of(dir, "criu");
      if (Files.isExecutable(candidate)) {
        return candidate;
      }
    }
    return Path.of("/usr/sbin/criu");
  }

  static String hostname() {
    String host = System.getenv("HOSTNAME");
    if (host != null && !host.isBlank()) {
      return host;
    }
    try {
      return Files.readString(Path.of("/proc/sys/kernel/hostname")).trim();
    } catch (Exception e) {
      return "localhost";
    }
  }

  /** Blocks until SIGTERM (or Ctrl-C), then runs {@code stop}. */
  static void awaitShutdown(Runnable stop) throws InterruptedException {
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      shutDown = true;
      stop.run();
      done.countDown();
    }, "shutdown"));
    done.await();
  }

  /** The version the build wrote into the jar. */
  static final class Version implements IVersionProvider {
    @Override
    public String[] getVersion() throws IOException {
      Properties build = new Properties();
      try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
        if (in != null) {
          build.load(in);
        }
      }
      return new String[] {"stasis " + build.getProperty("version", "(unknown version)"),
          "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")"};
    }
  }
}
