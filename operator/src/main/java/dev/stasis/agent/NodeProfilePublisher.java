package dev.stasis.agent;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.kube.EventRecorder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Publishes this node's {@link NodeProfile} at start and again whenever what it observes changes. */
public class NodeProfilePublisher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeProfilePublisher.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long REFRESH_SECONDS = 60;

  private final KubernetesClient client;
  private final AgentConfig config;
  private final NodeProfileProbe probe;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "node-profile");
    t.setDaemon(true);
    return t;
  });
  private final EventRecorder events;
  private NodeProfileSpec published;

  public NodeProfilePublisher(KubernetesClient client, AgentConfig config) {
    this(client, config, new NodeProfileProbe());
  }

  NodeProfilePublisher(KubernetesClient client, AgentConfig config, NodeProfileProbe probe) {
    this.client = client;
    this.config = config;
    this.probe = probe;
    this.events = new EventRecorder(client, "agent", config.nodeName());
  }

  /** Publishes once now (so the node is known before any work arrives), then keeps it current. */
  public void start() {
    publishIfChanged();
    timer.scheduleWithFixedDelay(this::publishIfChanged, REFRESH_SECONDS, REFRESH_SECONDS, TimeUnit.SECONDS);
  }

  synchronized void publishIfChanged() {
    try {
      NodeProfileSpec current = probe.probe(config.criu(), config.workDir());
      List<String> warnings = config.kubelet().warnings();
      current.warnings = warnings.isEmpty() ? null : warnings;
      if (published != null && sameIgnoringFreeSpace(published, current)) {
        return;
      }
      NodeProfile profile = new NodeProfile();
      profile.setMetadata(new ObjectMetaBuilder().withName(config.nodeName()).build());
      profile.setSpec(current);
      NodeProfile existing = client.resources(NodeProfile.class).withName(config.nodeName()).get();
      if (existing == null) {
        client.resource(profile).create();
      } else {
        existing.setSpec(current);
        client.resource(existing).update();
      }
      if (current.warnings != null && (published == null || published.warnings == null)) {
        NodeProfile warned = client.resources(NodeProfile.class).withName(config.nodeName()).get();
        current.warnings.forEach(w -> events.warning(warned, "InsecureSetting", w));
      }
      published = current;
      log.info("published NodeProfile {}: {} {}, CRIU {}", config.nodeName(), current.arch,
          current.cpu.modelName, current.criu.version);
    } catch (KubernetesClientException e) {
      log.warn("could not publish NodeProfile {}: {}", config.nodeName(), e.getMessage());
    }
  }

  /** Free space changes all the time; republishing for every byte would flood the API server. */
  private static boolean sameIgnoringFreeSpace(NodeProfileSpec a, NodeProfileSpec b) {
    var ta = JSON.valueToTree(a);
    var tb = JSON.valueToTree(b);
    ((com.fasterxml.jackson.databind.node.ObjectNode) ta).remove("workDirFreeBytes");
    ((com.fasterxml.jackson.databind.node.ObjectNode) tb).remove("workDirFreeBytes");
    return ta.equals(tb);
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
