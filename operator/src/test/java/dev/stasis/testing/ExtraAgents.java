package dev.stasis.testing;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.api.NodeProfile;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * More agents for an {@link InProcessCluster}'s run, posing as nodes of their own on this machine
 * (named {@code <the run's node>-<suffix>}, each with its own work folder and this machine's CRIU),
 * started in this JVM without an operator: the run's operator places work on them. Ready once each
 * has published its NodeProfile; closed by the test class that started them.
 */
public final class ExtraAgents implements AutoCloseable {
  private final InProcessCluster cluster;
  private final Criu criu = new Criu(Main.criuPath(null), Map.of());
  private final List<AgentConfig> agents = new ArrayList<>();
  private InProcessStasis started;

  private ExtraAgents(InProcessCluster cluster) {
    this.cluster = cluster;
  }

  public static ExtraAgents of(InProcessCluster cluster) {
    return new ExtraAgents(cluster);
  }

  /** The node name of {@code suffix} in this run. */
  public String name(String suffix) {
    return cluster.node() + "-" + suffix;
  }

  /** The label of this run's nodes, by which a test's placement selects them and never another test class's. */
  public Map<String, String> thisRun() {
    return Map.of("stasis.dev/test-run", cluster.node());
  }

  /**
   * One more node, {@code suffix}: its agent may checkpoint {@code hostProcesses} (namespaces, or
   * ProcessTargetPolicy.ALL), sees the machine's files under {@code hostRoot}, labelled {@code labels}.
   */
  public ExtraAgents node(String suffix, Set<String> hostProcesses, Path hostRoot, Map<String, String> labels) {
    String node = name(suffix);
    agents.add(new AgentConfig(node, cluster.dir().resolve("work-" + node), criu, hostProcesses,
        KubeletSettings.defaults(node), hostRoot, labels, null));
    return this;
  }

  /** Starts them all and waits until each has published its NodeProfile. */
  public ExtraAgents start() {
    InProcessStasis.Builder builder = InProcessStasis.on(cluster.client()).withoutOperator();
    agents.forEach(builder::agent);
    started = builder.start();
    await().atMost(TIMEOUT).until(() -> agents.stream()
        .allMatch(a -> cluster.client().resources(NodeProfile.class).withName(a.nodeName()).get() != null));
    return this;
  }

  @Override
  public void close() {
    if (started != null) {
      started.close();
    }
  }
}
