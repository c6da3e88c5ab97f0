package dev.stasis.testing;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.NodeProfilePublisher;
import dev.stasis.cli.Roles;
import dev.stasis.criu.Criu;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The operator and one or more agents running in the test JVM, as {@code stasis local} runs them.
 * Each role may use its own client, so that tests can run them as their ServiceAccounts.
 */
public final class InProcessStasis implements AutoCloseable {
  private final List<Operator> operators = new ArrayList<>();
  private final List<NodeProfilePublisher> publishers = new ArrayList<>();

  private InProcessStasis() {}

  public static Builder on(KubernetesClient client) {
    return new Builder(client);
  }

  @Override
  public void close() {
    operators.forEach(Operator::stop);
    publishers.forEach(NodeProfilePublisher::close);
  }

  public static final class Builder {
    private final KubernetesClient client;
    private KubernetesClient operatorClient;
    private final List<AgentConfig> agents = new ArrayList<>();
    private final List<KubernetesClient> agentClients = new ArrayList<>();
    private boolean withOperator = true;

    private Builder(KubernetesClient client) {
      this.client = client;
      this.operatorClient = client;
    }

    public Builder agent(String node, Path workDir, Path criu) {
      return agent(node, workDir, criu, client);
    }

    public Builder agent(String node, Path workDir, Path criu, KubernetesClient agentClient) {
      return agent(new AgentConfig(node, workDir, new Criu(criu, Map.of())), agentClient);
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

    public Builder withoutOperator() {
      withOperator = false;
      return this;
    }

    public InProcessStasis start() {
      InProcessStasis stasis = new InProcessStasis();
      if (withOperator) {
        Operator operator = Roles.newOperator(operatorClient);
        Roles.registerOperator(operator, operatorClient, "test", Set.of());
        stasis.operators.add(operator);
      }
      for (int i = 0; i < agents.size(); i++) {
        KubernetesClient agentClient = agentClients.get(i);
        Operator agentOperator = Roles.newOperator(agentClient);
        NodeProfilePublisher publisher = Roles.registerAgent(agentOperator, agentClient, agents.get(i));
        publisher.start();
        stasis.publishers.add(publisher);
        stasis.operators.add(agentOperator);
      }
      stasis.operators.forEach(Operator::start);
      return stasis;
    }
  }
}
