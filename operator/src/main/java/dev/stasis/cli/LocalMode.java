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
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * {@code stasis local}: everything on this machine. A real kube-apiserver (unless --kubeconfig
 * names another cluster), the CRDs, a default filesystem storage, the operator, and an agent for
 * this machine, registered as node {@value #DEFAULT_NODE}; with {@code --nodes 2} a second agent
 * as node {@code local-b} with its own work folder, so that a workload can move between "nodes".
 */
final class LocalMode {
  static final String DEFAULT_NODE = "local";
  static final String STORAGE_NAME = "local";
  /** The namespace where `stasis local` lets its user checkpoint this machine's processes. */
  static final String HOST_PROCESS_NAMESPACE = "default";
  /** Agents {@code --nodes} may start on one machine (nodes local, local-b, … local-z). */
  static final int MAX_NODES = 26;

  private LocalMode() {}

  static void run(Flags flags) throws Exception {
    Path state = Path.of(flags.get("state-dir", ".stasis")).toAbsolutePath();
    ControlPlane controlPlane = null;
    String kubeconfig = flags.get("kubeconfig");
    if (kubeconfig == null) {
      Path script = Path.of(flags.get("control-plane-script", "scripts/control-plane.sh")).toAbsolutePath();
      System.out.println("starting a local control plane (the first start builds it; that takes a while)...");
      controlPlane = ControlPlane.start(script, state.resolve("cluster"));
      Files.copy(controlPlane.kubeconfig(), state.resolve("kubeconfig"), StandardCopyOption.REPLACE_EXISTING);
      kubeconfig = state.resolve("kubeconfig").toString();
    }
    KubernetesClient client = Main.client(kubeconfig);
    Crds.install(client);
    // Storage credentials Secrets go here, as on a cluster (config/rbac).
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata()
        .build()).createOr(NonDeletingOperation::update);
    ensureDefaultStorage(client, state.resolve("storage"));

    List<AgentConfig> agents = agentConfigs(flags, state);
    var operator = Roles.newOperator(client);
    Roles.registerOperator(operator, client, Main.hostname(), agents.get(0).retries());
    AgentShutdown shutdown = new AgentShutdown();
    List<Roles.AgentLoops> agentLoops = new ArrayList<>();
    for (AgentConfig agent : agents) {
      agentLoops.add(Roles.registerAgent(operator, client, agent, shutdown));
    }
    // One machine: nobody else needs to reach the metrics port.
    MetricsServer metrics = Main.metricsServer(flags, "127.0.0.1", Main.OPERATOR_METRICS_PORT,
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
        %n""", agents.size() > 1 ? "s" : "", agents.size() > 1 ? "s" : "", nodes, STORAGE_NAME, state.resolve("storage"), kubeconfig, state, metrics.port());
    ControlPlane started = controlPlane;
    Main.awaitShutdown(() -> {
      shutdown.begin();
      operator.stop();
      agentLoops.forEach(Roles.AgentLoops::close);
      metrics.close();
      client.close();
      if (started != null) {
        started.close();
      }
    });
  }

  /**
   * One agent per node {@code --nodes} asks for (default 1, at most {@value #MAX_NODES}): the first
   * as {@link #agentConfig} says, each further one as node {@code <first>-b}, {@code <first>-c}, …
   * with a work folder of its own next to the first's ({@code work-<node>}): each agent keeps its
   * key and its jobs' folders there, as on a node of its own.
   */
  static List<AgentConfig> agentConfigs(Flags flags, Path state) {
    String value = flags.get("nodes", "1");
    int count;
    try {
      count = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      count = 0;
    }
    if (count < 1 || count > MAX_NODES) {
      throw new IllegalArgumentException("--nodes wants a number of agents from 1 to " + MAX_NODES + ", got '" + value + "'");
    }
    AgentConfig first = agentConfig(flags, state);
    List<AgentConfig> agents = new ArrayList<>(List.of(first));
    for (int i = 1; i < count; i++) {
      String node = first.nodeName() + "-" + (char) ('a' + i);
      Path workDir = first.workDir().resolveSibling("work-" + node);
      agents.add(new AgentConfig(node, workDir, first.criu(), first.hostProcessNamespaces(),
          KubeletSettings.defaults(node), first.hostRoot(), first.labels(), first.profileOverrides(),
          first.maxConcurrent(), first.retries(), first.runtime()));
    }
    return agents;
  }

  /**
   * The agent's settings: every agent flag applies, with local defaults — node {@value #DEFAULT_NODE},
   * work folder in the state folder, and host processes (this machine's, which are in no pod) may be
   * checkpointed and restored from namespace {@value #HOST_PROCESS_NAMESPACE} (the README's
   * walkthrough), unless --allow-host-processes says otherwise.
   */
  static AgentConfig agentConfig(Flags flags, Path state) {
    String node = flags.get("node", DEFAULT_NODE);
    Set<String> hostProcesses = flags.get("allow-host-processes") == null && flags.get("allow-process-targets") == null
        ? Set.of(HOST_PROCESS_NAMESPACE)
        : Main.hostProcessNamespaces(flags);
    AgentConfig flagged = Main.agentConfig(flags, node, Path.of(flags.get("work-dir", state.resolve("work").toString())));
    return new AgentConfig(node, flagged.workDir(), flagged.criu(), hostProcesses, flagged.kubelet(),
        flagged.hostRoot(), flagged.labels(), flagged.profileOverrides(), flagged.maxConcurrent(), flagged.retries(),
        flagged.runtime());
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
