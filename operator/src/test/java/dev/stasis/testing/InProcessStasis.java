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

/** The operator and one or more agents running in the test JVM, as {@code stasis local} runs them. */
public final class InProcessStasis implements AutoCloseable {
  private final Operator operator;
  private final List<NodeProfilePublisher> publishers = new ArrayList<>();

  private InProcessStasis(Operator operator) {
    this.operator = operator;
  }

  public static Builder on(KubernetesClient client) {
    return new Builder(client);
  }

  @Override
  public void close() {
    operator.stop();
    publishers.forEach(NodeProfilePublisher::close);
  }

  public static final class Builder {
    private final KubernetesClient client;
    private final List<AgentConfig> agents = new ArrayList<>();
    private boolean withOperator = true;

    private Builder(KubernetesClient client) {
      this.client = client;
    }

    public Builder agent(String node, Path workDir, Path criu) {
      return agent(new AgentConfig(node, workDir, new Criu(criu, Map.of())));
    }

    public Builder agent(AgentConfig config) {
      agents.add(config);
      return this;
    }

    public Builder withoutOperator() {
      withOperator = false;
      return this;
    }

    public InProcessStasis start() {
      Operator operator = Roles.newOperator(client);
      InProcessStasis stasis = new InProcessStasis(operator);
      if (withOperator) {
        Roles.registerOperator(operator, client, "test");
      }
      for (AgentConfig agent : agents) {
        NodeProfilePublisher publisher = Roles.registerAgent(operator, client, agent);
        publisher.start();
        stasis.publishers.add(publisher);
      }
      operator.start();
      return stasis;
    }
  }
}
