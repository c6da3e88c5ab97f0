package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
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
import java.util.Set;

/**
 * {@code stasis local}: everything on this machine. A real kube-apiserver (unless --kubeconfig
 * names another cluster), the CRDs, a default filesystem storage, the operator, and an agent for
 * this machine, registered as node {@value #DEFAULT_NODE}.
 */
final class LocalMode {
  static final String DEFAULT_NODE = "local";
  static final String STORAGE_NAME = "local";
  /** The namespace where `stasis local` lets its user checkpoint this machine's processes. */
  static final String HOST_PROCESS_NAMESPACE = "default";

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

    AgentConfig agent = agentConfig(flags, state);
    String node = agent.nodeName();
    var operator = Roles.newOperator(client);
    Roles.registerOperator(operator, client, Main.hostname(), agent.retries());
    AgentShutdown shutdown = new AgentShutdown();
    var profiles = Roles.registerAgent(operator, client, agent, shutdown);
    // One machine: nobody else needs to reach the metrics port.
    MetricsServer metrics = Main.metricsServer(flags, "127.0.0.1", Main.OPERATOR_METRICS_PORT,
        Roles.readiness(operator, shutdown::isStopping));
    profiles.start();
    operator.start();
    System.out.printf("""
        Stasis runs locally: operator + agent for node '%s', default storage '%s' at %s.
          export KUBECONFIG=%s
          %s/bin/kubectl get nodeprof,ckptstore
          curl -s http://127.0.0.1:%d/metrics | grep ^stasis_
        Stop with Ctrl-C.
        %n""", node, STORAGE_NAME, state.resolve("storage"), kubeconfig, state, metrics.port());
    ControlPlane started = controlPlane;
    Main.awaitShutdown(() -> {
      shutdown.begin();
      operator.stop();
      profiles.close();
      metrics.close();
      client.close();
      if (started != null) {
        started.close();
      }
    });
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
        flagged.runtime(), flagged.travellingLimits());
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
