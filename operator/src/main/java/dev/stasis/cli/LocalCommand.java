package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
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
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code stasis local}: everything on this machine. A real kube-apiserver (unless --kubeconfig
 * names another cluster), the CRDs, a default filesystem storage, the operator, and an agent for
 * this machine, registered as node {@value #DEFAULT_NODE}.
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

  @Option(names = "--state-dir", paramLabel = "DIR", converter = Converters.DirectoryPath.class,
      defaultValue = ".stasis", order = 1,
      description = "Where the control plane, the storage and the agent's work folder live (default: ${DEFAULT-VALUE}).")
  Path stateDir;

  @Option(names = "--node", paramLabel = "NAME", defaultValue = DEFAULT_NODE, order = 2,
      description = "The name this machine has as a node (default: ${DEFAULT-VALUE}).")
  String node;

  @Option(names = "--control-plane-script", paramLabel = "FILE", defaultValue = "scripts/control-plane.sh", order = 3,
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

    AgentConfig config = agentConfig(state);
    var operator = Roles.newOperator(client);
    Roles.registerOperator(operator, client, Main.hostname(), config.retries());
    AgentShutdown shutdown = new AgentShutdown();
    var profiles = Roles.registerAgent(operator, client, config, shutdown);
    // One machine: nobody else needs to reach the metrics port.
    MetricsServer server = metrics.start("127.0.0.1", Main.OPERATOR_METRICS_PORT,
        Roles.readiness(operator, shutdown::isStopping));
    profiles.start();
    operator.start();
    System.out.printf("""
        Stasis runs locally: operator + agent for node '%s', default storage '%s' at %s.
          export KUBECONFIG=%s
          %s/bin/kubectl get nodeprof,ckptstore
          curl -s http://127.0.0.1:%d/metrics | grep ^stasis_
        Stop with Ctrl-C.
        %n""", node, STORAGE_NAME, state.resolve("storage"), kubeconfig, state, server.port());
    ControlPlane started = controlPlane;
    Main.awaitShutdown(() -> {
      shutdown.begin();
      operator.stop();
      profiles.close();
      server.close();
      client.close();
      if (started != null) {
        started.close();
      }
    });
    return 0;
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
