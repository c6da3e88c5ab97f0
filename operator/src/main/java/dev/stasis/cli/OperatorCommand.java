package dev.stasis.cli;

import dev.stasis.kube.RetryPolicy;
import dev.stasis.metrics.MetricsServer;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code stasis operator}: reconciles Checkpoints, Restores, schedules and storages. */
@Command(name = "operator", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
    sortOptions = false, description = "Reconciles Checkpoints, Restores, CheckpointSchedules and CheckpointStorages;"
        + " runs until SIGTERM.")
final class OperatorCommand implements Callable<Integer> {
  /** The Lease the operator replicas compete for, in --leader-election-namespace. */
  static final String LEASE_NAME = "stasis-operator";

  @Option(names = "--leader-election-namespace", paramLabel = "NS", order = 1,
      description = "Take part in leader election on the Lease " + LEASE_NAME + " in this namespace: only its"
          + " holder reconciles (default: no election, this replica reconciles).")
  String leaderElectionNamespace;

  @Option(names = "--retry-backoff", paramLabel = "DURATION", converter = Converters.PositiveDuration.class,
      defaultValue = "10s", order = 2,
      description = "Wait before trying again a Checkpoint or Restore refused while its storage is down, doubling"
          + " up to 5m (default: ${DEFAULT-VALUE}).")
  Duration retryBackoff;

  @Mixin KubeconfigOption cluster;
  @Mixin MetricsOptions metrics;
  @Mixin LoggingOptions logging;

  @Override
  public Integer call() throws Exception {
    logging.apply();
    KubernetesClient client = cluster.client();
    AtomicBoolean stopping = new AtomicBoolean();
    Optional<LeaderElectionConfiguration> leaderElection = Optional.ofNullable(leaderElectionNamespace)
        .map(namespace -> leaderElection(namespace, Main.hostname(), stopping::get));
    var operator = Roles.newOperator(client, leaderElection);
    Roles.registerOperator(operator, client, Main.hostname(), RetryPolicy.withBase(retryBackoff));
    MetricsServer server = metrics.start("0.0.0.0", Main.OPERATOR_METRICS_PORT,
        Roles.readiness(operator, stopping::get));
    operator.start();
    Main.awaitShutdown(() -> {
      stopping.set(true);
      operator.stop();
      server.close();
    });
    return 0;
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
}
