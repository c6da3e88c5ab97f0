package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.metrics.MetricsServer;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** {@code stasis agent}: the node-side work of one node. */
@Command(name = "agent", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
    description = "Does the node-side work of one node (CRIU dumps and restores, kubelet checkpoints, uploads and"
        + " downloads) and publishes its NodeProfile; runs until SIGTERM.")
final class AgentCommand implements Callable<Integer> {
  static final Path WORK_DIR = Path.of("/var/lib/stasis");

  @Spec CommandSpec spec;

  @Option(names = "--node", paramLabel = "NAME", defaultValue = "${env:NODE_NAME}", order = 1,
      description = "The node this agent serves (default: $NODE_NAME).")
  String node;

  @Mixin AgentOptions agent;
  @Mixin KubeconfigOption cluster;
  @Mixin MetricsOptions metrics;
  @Mixin LoggingOptions logging;

  @Override
  public Integer call() throws Exception {
    if (node == null || node.isBlank()) {
      throw new ParameterException(spec.commandLine(),
          "the agent needs its node's name: --node NAME or the NODE_NAME environment variable");
    }
    logging.apply();
    AgentConfig config = agent.config(node, WORK_DIR, Set.of());
    KubernetesClient client = cluster.client();
    var operator = Roles.newOperator(client);
    AgentShutdown shutdown = new AgentShutdown();
    var loops = Roles.registerAgent(operator, client, config, shutdown);
    MetricsServer server = metrics.start("0.0.0.0", Main.AGENT_METRICS_PORT,
        Roles.readiness(operator, shutdown::isStopping));
    loops.start();
    operator.start();
    Main.awaitShutdown(() -> {
      shutdown.begin(); // before stop(): the jobs it cuts off still write their Failed status
      operator.stop();
      loops.close();
      server.close();
    });
    return 0;
  }
}
