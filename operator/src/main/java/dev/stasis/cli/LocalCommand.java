package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.FileSystemStorage;
import dev.stasis.metrics.MetricsServer;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code stasis local}: everything on this machine. A real kube-apiserver (unless --kubeconfig
 * names another cluster), the CRDs, a default filesystem storage, the operator, and an agent for
 * this machine, registered as node {@value #DEFAULT_NODE}; with {@code --nodes 2} a second agent
 * as node {@code local-b} with its own work folder, so that a workload can move between "nodes".
 */
@Command(name = "local", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
    description = {"Runs Stasis on this machine for trying it out: a local kube-apiserver (built on first use by"
        + " scripts/control-plane.sh), the CRDs, a default storage in STATE-DIR/storage, the operator and an agent for"
        + " node 'local'; until Ctrl-C.", "Takes every flag of the agent."})
final class LocalCommand implements Callable<Integer> {
  static final String DEFAULT_NODE = "local";
  static final String STORAGE_NAME = "local";
  /** The namespace where `stasis local` lets its user checkpoint this machine's processes. */
  static final String HOST_PROCESS_NAMESPACE = "default";
  /** Agents {@code --nodes} may start on one machine (nodes local, local-b, … local-z). */
  static final int MAX_NODES = 26;

  @Option(names = "--state-dir", paramLabel = "DIR", converter = Converters.DirectoryPath.class,
      defaultValue = ".stasis", order = 1,
      description = "Where the control plane, the storage and the agent's work folder live (default: ${DEFAULT-VALUE}).")
  Path stateDir;

  @Option(names = "--node", paramLabel = "NAME", defaultValue = DEFAULT_NODE, order = 2,
      description = "The name this machine has as a node (default: ${DEFAULT-VALUE}).")
  String node;

  @Option(names = "--nodes", paramLabel = "N", defaultValue = "1", converter = Converters.LocalNodes.class, order = 3,
      description = "How many agents to run, as nodes NAME, NAME-b, NAME-c, ... each with a work folder of its own,"
          + " so that a workload can move between them (1 to " + MAX_NODES + "; default: ${DEFAULT-VALUE}).")
  int nodes;

  @Option(names = "--control-plane-script", paramLabel = "FILE", defaultValue = "scripts/control-plane.sh", order = 4,
      description = "The script that builds, starts and stops the local control plane (default: ${DEFAULT-VALUE});"
          + " not used with --kubeconfig.")
  Path controlPlaneScript;

  @Mixin AgentOptions agent;
  @Mixin KubeconfigOption cluster;
  @Mixin MetricsOptions metrics;
  @Mixin LoggingOptions logging;

  @Override
  public Integer call() throws Exception {
    logging.apply();
    Path state = stateDir.toAbsolutePath();
    ControlPlane controlPlane = null;
    KubernetesClient client;
    Path kubeconfig = cluster.kubeconfig;
    if (kubeconfig == null) {
      System.out.println("starting a local control plane (the first start builds it; that takes a while)...");
      controlPlane = ControlPlane.start(controlPlaneScript.toAbsolutePath(), state.resolve("cluster"));
      kubeconfig = state.resolve("kubeconfig");
      Files.copy(controlPlane.kubeconfig(), kubeconfig, StandardCopyOption.REPLACE_EXISTING);
      cluster.kubeconfig = kubeconfig;
    }
    client = cluster.client();
    Crds.install(client);
    // Storage credentials Secrets go here, as on a cluster (config/rbac).
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata()
        .build()).createOr(NonDeletingOperation::update);
    ensureDefaultStorage(client, state.resolve("storage"));

    List<AgentConfig> agents = agentConfigs(state);
    var operator = Roles.newOperator(client);
    Roles.registerOperator(operator, client, Main.hostname(), agents.get(0).retries());
    AgentShutdown shutdown = new AgentShutdown();
    List<Roles.AgentLoops> agentLoops = new ArrayList<>();
    for (AgentConfig agent : agents) {
      agentLoops.add(Roles.registerAgent(operator, client, agent, shutdown));
    }
    // One machine: nobody else needs to reach the metrics port.
    MetricsServer server = metrics.start("127.0.0.1", Main.OPERATOR_METRICS_PORT,
        Roles.readiness(operator, shutdown::isStopping));
    agentLoops.forEach(Roles.AgentLoops::start);
    operator.start();
    String nodes = String.join("', '", agents.stream().map(AgentConfig::nodeName).toList());
    System.out.printf("""
        Stasis runs locally: operator + agent%s for node%s '%s', default storage '%s' at %s.
          export KUBECONFIG=%s
          %s/bin/kubectl get nodeprof,ckptstore
          curl -s http://127.0.0.1:%d/metrics | grep ^stasis_
        Stop with Ctrl-C.
        %n""", agents.size() > 1 ? "s" : "", agents.size() > 1 ? "s" : "", nodes, STORAGE_NAME, state.resolve("storage"), kubeconfig, state, server.port());
    ControlPlane started = controlPlane;
    Main.awaitShutdown(() -> {
      shutdown.begin();
      operator.stop();
      agentLoops.forEach(Roles.AgentLoops::close);
      server.close();
      client.close();
      if (started != null) {
        started.close();
      }
    });
    return 0;
  }

  /**
   * One agent per node {@code --nodes} asks for (default 1, at most {@value #MAX_NODES}): the first
   * as {@link #agentConfig} says, each further one as node {@code <first>-b}, {@code <first>-c}, …
   * with a work folder of its own next to the first's ({@code work-<node>}): each agent keeps its
   * key and its jobs' folders there, as on a node of its own.
   */
  List<AgentConfig> agentConfigs(Path state) {
    AgentConfig first = agentConfig(state);
    List<AgentConfig> agents = new ArrayList<>(List.of(first));
    for (int i = 1; i < nodes; i++) {
      String node = first.nodeName() + "-" + (char) ('a' + i);
      Path workDir = first.workDir().resolveSibling("work-" + node);
      agents.add(new AgentConfig(node, workDir, first.criu(), first.hostProcessNamespaces(),
          KubeletSettings.defaults(node), first.hostRoot(), first.labels(), first.profileOverrides(),
          first.maxConcurrent(), first.retries(), first.runtime(), first.travellingLimits()));
    }
    return agents;
  }

  /**
   * The agent's settings: every agent flag applies, with local defaults — node {@value #DEFAULT_NODE},
   * work folder in the state folder, and host processes (this machine's, which are in no pod) may be
   * checkpointed and restored from namespace {@value #HOST_PROCESS_NAMESPACE} (the README's
   * walkthrough), unless --allow-host-processes says otherwise.
   */
  AgentConfig agentConfig(Path state) {
    return agent.config(node, state.resolve("work"), Set.of(HOST_PROCESS_NAMESPACE));
  }

  private static void ensureDefaultStorage(KubernetesClient client, Path path) throws Exception {
    Files.createDirectories(path);
    if (client.resources(CheckpointStorage.class).withName(STORAGE_NAME).get() != null) {
      return;
    }
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName(STORAGE_NAME).build());
    CheckpointStorageSpec spec = new CheckpointStorageSpec();
    spec.isDefault = true;
    spec.filesystem = new FileSystemStorage(path.toString());
    storage.setSpec(spec);
    client.resource(storage).create();
  }
}
