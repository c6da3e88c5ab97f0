package dev.stasis.testing;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.kube.EventRecorder;
import io.fabric8.kubernetes.client.KubernetesClient;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The node work of an agent on a test's API server (the fabric8 mock for the agent's unit tests),
 * its queue stopped after each test. Register with {@code @RegisterExtension}.
 */
public final class TestAgent implements AfterEachCallback {
  private final AgentShutdown shutdown = new AgentShutdown();

  public NodeWork work(KubernetesClient client, AgentConfig config) {
    return new NodeWork(client, config, new EventRecorder(client, "agent", config.nodeName()), shutdown);
  }

  @Override
  public void afterEach(ExtensionContext context) {
    shutdown.begin();
  }
}
