package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.RuntimeSettings;
import dev.stasis.agent.TravellingFileLimits;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.agent.work.NodeWorkQueue;
import dev.stasis.criu.Criu;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.metrics.MetricsServer;
import dev.stasis.operator.schedule.Durations;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/** {@code stasis operator | agent | local}: one jar, two roles, and both together for one machine. */
public final class Main {
  private static final String USAGE = """
      usage: stasis <command> [flags]
        operator  reconcile Checkpoints, Restores and storages          [--kubeconfig FILE]
                                                                        [--leader-election-namespace NS] [--metrics-port 8080]
                                                                        [--retry-backoff 10s (wait before trying again a Checkpoint
                                                                         or Restore refused while its storage is down)]
        agent     do the node-side work for one node                    --node NAME [--work-dir DIR] [--criu PATH] [--criu-env K=V,...]
                                                                        [--allow-host-processes NS,...|*] [--kubeconfig FILE]
                                                                        [--metrics-port 8081]
                  [--max-concurrent 2 (checkpoints and restores at once; the rest wait in line)]
                  [--retry-backoff 10s (wait before the first retry of transiently failed work, doubling up to 5m)]
                  [--node-labels K=V,... (NodeProfile labels, over the Node's)] [--host-root DIR (the node's / as the agent sees it)]
                  [--profile-overrides FILE (test aid: JSON merge patch over the observed NodeProfile)]
                  [--travelling-files-max-count 256] [--travelling-files-max-bytes 1073741824 (what one checkpoint
                   carries of a job's files on tmpfs, e.g. MPI's /dev/shm segments; above it, it is refused)]
                  pod checkpoints through the kubelet:                  [--kubelet-url https://$NODE_NAME:10250] [--kubelet-ca FILE]
                                                                        [--kubelet-token-file FILE] [--kubelet-checkpoint-dir DIR]
                                                                        [--kubelet-insecure-skip-tls-verify]
                  the container runtime (paths as the node sees them):  [--containerd-config /etc/containerd/config.toml]
                                                                        [--crio-socket /run/crio/crio.sock]
                                                                        [--runtime-restore auto|enabled|disabled (whether it
                                                                         restores from checkpoint images; auto: find out)]
                                                                        [--container-storage-dir DIR (where it keeps images)]
        local     operator + agent + a local control plane for trying Stasis on this machine
                  [--state-dir .stasis] [--node NAME] [--criu PATH] [--kubeconfig FILE (use this cluster instead)]
                  [--metrics-port 8080] and the agent's flags ([--max-concurrent 2] [--retry-backoff 10s] [--node-labels ...] ...)
      every command serves /metrics, /healthz and /readyz on --metrics-port (--metrics-address; local: 127.0.0.1)
      """;
  static final int OPERATOR_METRICS_PORT = 8080;
  static final int AGENT_METRICS_PORT = 8081;
  /** The Lease the operator replicas compete for, in --leader-election-namespace. */
  static final String LEASE_NAME = "stasis-operator";

  private Main() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("help")) {
      System.out.print(USAGE);
      System.exit(args.length == 0 ? 2 : 0);
    }
    Flags flags;
    try {
      flags = new Flags(Arrays.asList(args).subList(1, args.length));
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.err.print(USAGE);
      System.exit(2);
      return;
    }
    switch (args[0]) {
      case "operator" -> runOperator(flags);
      case "agent" -> runAgent(flags);
      case "local" -> LocalMode.run(flags);
      default -> {
        System.err.println("unknown command '" + args[0] + "'");
        System.err.print(USAGE);
        System.exit(2);
      }
    }
  }

  static KubernetesClient client(String kubeconfig) throws Exception {
    Config config = kubeconfig == null
        ? Config.autoConfigure(null)
        : Config.fromKubeconfig(null, Files.readString(Path.of(kubeconfig)), kubeconfig);
    return new KubernetesClientBuilder().withConfig(config).build();
  }

  private static void runOperator(Flags flags) throws Exception {
    KubernetesClient client = client(flags.get("kubeconfig"));
    AtomicBoolean stopping = new AtomicBoolean();
    Optional<LeaderElectionConfiguration> leaderElection = Optional.ofNullable(flags.get("leader-election-namespace"))
        .map(namespace -> leaderElection(namespace, hostname(), stopping::get));
    var operator = Roles.newOperator(client, leaderElection);
    Roles.registerOperator(operator, client, hostname(), retryPolicy(flags));
    MetricsServer metrics = metricsServer(flags, "0.0.0.0", OPERATOR_METRICS_PORT,
        Roles.readiness(operator, stopping::get));
    operator.start();
    awaitShutdown(() -> {
      stopping.set(true);
      operator.stop();
      metrics.close();
    });
  }

  private static void runAgent(Flags flags) throws Exception {
    String node = flags.get("node", System.getenv("NODE_NAME"));
    if (node == null || node.isBlank()) {
      System.err.println("the agent needs its node's name: --node NAME or the NODE_NAME environment variable");
      System.exit(2);
    }
    KubernetesClient client = client(flags.get("kubeconfig"));
    AgentConfig config = agentConfig(flags, node, Path.of(flags.get("work-dir", "/var/lib/stasis")));
    var operator = Roles.newOperator(client);
    AgentShutdown shutdown = new AgentShutdown();
    var profiles = Roles.registerAgent(operator, client, config, shutdown);
    MetricsServer metrics = metricsServer(flags, "0.0.0.0", AGENT_METRICS_PORT,
        Roles.readiness(operator, shutdown::isStopping));
    profiles.start();
    operator.start();
    awaitShutdown(() -> {
      shutdown.begin(); // before stop(): the jobs it cuts off still write their Failed status
      operator.stop();
      profiles.close();
      metrics.close();
    });
  }

  /**
   * A replica that loses the Lease while it runs exits, and its pod comes back as a standby: two
   * replicas never reconcile at once. One that gives the Lease up because it is stopping just stops
   * (exiting from within the shutdown hook would hang the JVM).
   */
  static LeaderElectionConfiguration leaderElection(String namespace, String identity, BooleanSupplier stopping) {
    var callbacks = new LeaderCallbacks(() -> {}, () -> {
      if (!stopping.getAsBoolean()) {
        System.err.println("lost the Lease " + namespace + "/" + LEASE_NAME + ": exiting, to come back as a standby");
        System.exit(1);
      }
    }, leader -> {});
    return new LeaderElectionConfiguration(LEASE_NAME, namespace, LeaderElectionConfiguration.LEASE_DURATION_DEFAULT_VALUE,
        LeaderElectionConfiguration.RENEW_DEADLINE_DEFAULT_VALUE, LeaderElectionConfiguration.RETRY_PERIOD_DEFAULT_VALUE,
        identity, callbacks, false);
  }

  static MetricsServer metricsServer(Flags flags, String defaultAddress, int defaultPort,
      MetricsServer.Readiness readiness) throws IOException {
    return MetricsServer.start(flags.get("metrics-address", defaultAddress),
        Integer.parseInt(flags.get("metrics-port", Integer.toString(defaultPort))), readiness);
  }

  static AgentConfig agentConfig(Flags flags, String node, Path workDir) {
    String overrides = flags.get("profile-overrides");
    return new AgentConfig(node, workDir,
        new Criu(criuPath(flags.get("criu")), keyValues("--criu-env", flags.get("criu-env"))),
        hostProcessNamespaces(flags), kubeletSettings(flags, node), Path.of(flags.get("host-root", "/")),
        keyValues("--node-labels", flags.get("node-labels")), overrides == null ? null : Path.of(overrides),
        positive("--max-concurrent", flags.get("max-concurrent", Integer.toString(NodeWorkQueue.DEFAULT_SLOTS))),
        retryPolicy(flags), runtimeSettings(flags), travellingLimits(flags));
  }

  /** --travelling-files-max-count and --travelling-files-max-bytes: what one checkpoint may carry of a job's tmpfs files. */
  static TravellingFileLimits travellingLimits(Flags flags) {
    TravellingFileLimits defaults = TravellingFileLimits.DEFAULT;
    return new TravellingFileLimits(
        (int) atLeastZero("--travelling-files-max-count", flags.get("travelling-files-max-count",
            Integer.toString(defaults.maxFiles())), Integer.MAX_VALUE),
        atLeastZero("--travelling-files-max-bytes", flags.get("travelling-files-max-bytes",
            Long.toString(defaults.maxBytes())), Long.MAX_VALUE));
  }

  private static long atLeastZero(String flag, String value, long max) {
    try {
      long n = Long.parseLong(value);
      if (n >= 0 && n <= max) {
        return n;
      }
    } catch (NumberFormatException e) {
      // said below
    }
    throw new IllegalArgumentException(flag + " wants a whole number from 0 to " + max + ", got '" + value + "'");
  }

  /** The node's container runtime; by default where containerd and CRI-O keep their configuration and socket. */
  static RuntimeSettings runtimeSettings(Flags flags) {
    RuntimeSettings defaults = RuntimeSettings.defaults();
    String storage = flags.get("container-storage-dir");
    return new RuntimeSettings(Path.of(flags.get("containerd-config", defaults.containerdConfig().toString())),
        Path.of(flags.get("crio-socket", defaults.crioSocket().toString())),
        RuntimeSettings.Restore.parse(flags.get("runtime-restore", defaults.restore().flag())),
        storage == null ? null : Path.of(storage));
  }

  private static int positive(String flag, String value) {
    try {
      int n = Integer.parseInt(value);
      if (n >= 1) {
        return n;
      }
    } catch (NumberFormatException e) {
      // said below
    }
    throw new IllegalArgumentException(flag + " wants a whole number of at least 1, got '" + value + "'");
  }

  /** --retry-backoff: a duration like the specs' (10s, 1m30s); default {@link RetryPolicy#DEFAULT_BASE}. */
  private static RetryPolicy retryPolicy(Flags flags) {
    String value = flags.get("retry-backoff");
    if (value == null) {
      return RetryPolicy.DEFAULT;
    }
    try {
      Duration d = Durations.parse(value);
      if (!d.isZero()) {
        return RetryPolicy.withBase(d);
      }
    } catch (IllegalArgumentException e) {
      // said below
    }
    throw new IllegalArgumentException("--retry-backoff wants a duration such as 10s or 1m, got '" + value + "'");
  }

  /** The kubelet of the agent's node; by default as a DaemonSet pod with its ServiceAccount sees it. */
  static KubeletSettings kubeletSettings(Flags flags, String node) {
    KubeletSettings defaults = KubeletSettings.defaults(node);
    var settings = new KubeletSettings(
        URI.create(flags.get("kubelet-url", defaults.url().toString())),
        Path.of(flags.get("kubelet-token-file", defaults.tokenFile().toString())),
        Path.of(flags.get("kubelet-ca", defaults.caFile().toString())),
        Boolean.parseBoolean(flags.get("kubelet-insecure-skip-tls-verify", "false")),
        Path.of(flags.get("kubelet-checkpoint-dir", defaults.checkpointDir().toString())),
        defaults.answerGrace());
    settings.warnings().forEach(w -> System.err.println("WARNING: " + w));
    return settings;
  }

  /**
   * Namespaces a cluster admin allows to checkpoint processes in no pod and to restore process
   * checkpoints; none by default (a process of one of the namespace's own pods needs no allowance).
   */
  static Set<String> hostProcessNamespaces(Flags flags) {
    if (flags.get("allow-process-targets") != null) {
      throw new IllegalArgumentException("--allow-process-targets is gone: a process of a pod of the Checkpoint's own"
          + " namespace needs no allowance any more, and --allow-host-processes NS,... names the namespaces that may"
          + " checkpoint processes in no pod and restore process checkpoints (no namespace label allows that)");
    }
    return ProcessTargetPolicy.parse(flags.get("allow-host-processes"));
  }

  /** An explicit path, else the CRIU scripts/install-criu.sh provides, else criu on the PATH. */
  public static Path criuPath(String explicit) {
    if (explicit != null) {
      return Path.of(explicit);
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

  /**
   * KEY=VALUE pairs separated by commas: extra environment for CRIU (e.g. CRIU_FAULT=130 for CRIU
   * 4.1 on machines without hardware breakpoints), or NodeProfile labels.
   */
  private static Map<String, String> keyValues(String flag, String spec) {
    Map<String, String> values = new HashMap<>();
    if (spec != null && !spec.isBlank()) {
      for (String pair : spec.split(",")) {
        int eq = pair.indexOf('=');
        if (eq <= 0) {
          throw new IllegalArgumentException(flag + " wants KEY=VALUE pairs separated by commas, got '" + pair + "'");
        }
        values.put(pair.substring(0, eq), pair.substring(eq + 1));
      }
    }
    return values;
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

  static void awaitShutdown(Runnable stop) throws InterruptedException {
    CountDownLatch done = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      stop.run();
      done.countDown();
    }, "shutdown"));
    done.await();
  }
}
