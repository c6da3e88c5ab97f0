package dev.stasis.testing;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.cli.Roles;
import dev.stasis.criu.Criu;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.metrics.MetricsServer;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The operator and one or more agents running in the test JVM, as {@code stasis local} runs them.
 * Each role may use its own client, so that tests can run them as their ServiceAccounts. Closing it
 * stops the agents the way SIGTERM does: no new work, running uploads cut off and marked Failed.
 */
public final class InProcessStasis implements AutoCloseable {
  private final List<Operator> operators = new ArrayList<>();
  private final List<Roles.AgentLoops> agentLoops = new ArrayList<>();
  private final List<AgentShutdown> shutdowns = new ArrayList<>();
  private MetricsServer metrics;
  private boolean closed;

  private InProcessStasis() {}

  public static Builder on(KubernetesClient client) {
    return new Builder(client);
  }

  /** The operator role's readiness, as /readyz reports it. */
  public Optional<String> operatorNotReadyBecause() {
    return Roles.readiness(operators.get(0), () -> false).get();
  }

  /** The port of /metrics, /healthz and /readyz on 127.0.0.1 (see {@link Builder#withMetricsServer()}). */
  public int metricsPort() {
    return metrics.port();
  }

  /** Stops everything once; closing again does nothing. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      shutdowns.forEach(AgentShutdown::begin);
    } finally {
      // Whatever went wrong above, no operator may outlive its test and reconcile the next one's resources.
      operators.forEach(Operator::stop);
      agentLoops.forEach(Roles.AgentLoops::close);
      if (metrics != null) {
        metrics.close();
      }
    }
  }

  public static final class Builder {
    private final KubernetesClient client;
    private KubernetesClient operatorClient;
    private final List<AgentConfig> agents = new ArrayList<>();
    private final List<KubernetesClient> agentClients = new ArrayList<>();
    private boolean withOperator = true;
    private boolean withMetricsServer;
    private String operatorInstance = "test";
    private Optional<LeaderElectionConfiguration> leaderElection = Optional.empty();
    private RetryPolicy operatorRetries = RetryPolicy.DEFAULT;

    private Builder(KubernetesClient client) {
      this.client = client;
      this.operatorClient = client;
    }

    public Builder agent(String node, Path workDir, Path criu) {
      return agent(node, workDir, criu, client);
    }

    /**
     * An agent whose cluster admin allowed every namespace to checkpoint this machine's processes,
     * which are in no pod (tests start their workloads as such host processes).
     */
    public Builder agent(String node, Path workDir, Path criu, KubernetesClient agentClient) {
      return agent(new AgentConfig(node, workDir, new Criu(criu, Map.of()), Set.of(ProcessTargetPolicy.ALL)), agentClient);
    }

    public Builder agent(AgentConfig config) {
      return agent(config, client);
    }

    public Builder agent(AgentConfig config, KubernetesClient agentClient) {
      agents.add(config);
      agentClients.add(agentClient);
      return this;
    }

    public Builder operatorClient(KubernetesClient operatorClient) {
      this.operatorClient = operatorClient;
      return this;
    }

    /** The operator's backoff for Checkpoints and Restores refused while their storage is down. */
    public Builder operatorRetries(RetryPolicy retries) {
      this.operatorRetries = retries;
      return this;
    }

    public Builder withoutOperator() {
      withOperator = false;
      return this;
    }

    /** Runs the operator as one of several replicas that compete for a Lease; it reports Events as {@code instance}. */
    public Builder leaderElection(String instance, LeaderElectionConfiguration leaderElection) {
      this.operatorInstance = instance;
      this.leaderElection = Optional.of(leaderElection);
      return this;
    }

    /** Serves the process' metrics and the first role's health on a free port of 127.0.0.1. */
    public Builder withMetricsServer() {
      withMetricsServer = true;
      return this;
    }

    public InProcessStasis start() {
      InProcessStasis stasis = new InProcessStasis();
      if (withOperator) {
        Operator operator = Roles.newOperator(operatorClient, leaderElection);
        Roles.registerOperator(operator, operatorClient, operatorInstance, operatorRetries);
        stasis.operators.add(operator);
        // Before the agents, whose profile probes take seconds on a busy machine: a test that
        // restarts Stasis between two runs of a schedule needs the operator back in time.
        operator.start();
      }
      for (int i = 0; i < agents.size(); i++) {
        KubernetesClient agentClient = agentClients.get(i);
        Operator agentOperator = Roles.newOperator(agentClient);
        AgentShutdown shutdown = new AgentShutdown();
        Roles.AgentLoops loops = Roles.registerAgent(agentOperator, agentClient, agents.get(i), shutdown);
        loops.start();
        stasis.agentLoops.add(loops);
        stasis.shutdowns.add(shutdown);
        stasis.operators.add(agentOperator);
      }
      if (withMetricsServer) {
        try {
          stasis.metrics = MetricsServer.start("127.0.0.1", 0,
              Roles.readiness(stasis.operators.get(0), () -> stasis.shutdowns.stream().anyMatch(AgentShutdown::isStopping)));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
      stasis.operators.stream().skip(withOperator ? 1 : 0).forEach(Operator::start);
      return stasis;
    }
  }
}
