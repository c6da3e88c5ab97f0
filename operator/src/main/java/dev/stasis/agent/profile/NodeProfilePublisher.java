package dev.stasis.agent.profile;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.work.NodeWork;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.NodeKey;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes this node's {@link NodeProfile} at start and again whenever what it observes changes,
 * and renews its heartbeat ({@link AgentHeartbeat}) while the agent runs.
 * Its labels, which Restores select nodes by, are the Node's labels (when the agent may read its
 * Node) with the agent's own {@code --node-labels} over them.
 */
public class NodeProfilePublisher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeProfilePublisher.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long REFRESH_SECONDS = 60;
  /**
   * How soon it looks again after a pass that could not see everything (the API server did not
   * answer, the kubelet cannot reach the container runtime), doubled each time up to the refresh:
   * a profile that wrongly says the node cannot restore would fail Restores meanwhile.
   */
  static final long RECHECK_SECONDS = 3;
  /** Free space is republished only when it moved by more than this share, not for every byte. */
  private static final double FREE_SPACE_CHANGE = 0.1;

  private final KubernetesClient client;
  private final AgentConfig config;
  private final NodeProfileProbe probe;
  private final ProfileOverrides overrides;
  private final NodeKey nodeKey;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "node-profile");
    t.setDaemon(true);
    return t;
  });
  private final EventRecorder events;
  private NodeProfileSpec published;
  private Map<String, String> publishedLabels;
  private ScheduledFuture<?> recheck;
  private long recheckSeconds = RECHECK_SECONDS;

  public NodeProfilePublisher(KubernetesClient client, AgentConfig config) {
    this(client, config, new NodeProfileProbe(config.hostRoot(), config.runtime()));
  }

  NodeProfilePublisher(KubernetesClient client, AgentConfig config, NodeProfileProbe probe) {
    this.client = client;
    this.config = config;
    this.probe = probe;
    this.overrides = ProfileOverrides.load(config.profileOverrides());
    this.nodeKey = NodeWork.nodeKey(config);
    this.events = new EventRecorder(client, "agent", config.nodeName());
  }

  /** Publishes once now (so the node is known before any work arrives), then keeps it current. */
  public void start() {
    publishIfChanged();
    timer.scheduleWithFixedDelay(this::publishIfChanged, REFRESH_SECONDS, REFRESH_SECONDS, TimeUnit.SECONDS);
    long heartbeat = AgentHeartbeat.INTERVAL.toSeconds();
    timer.scheduleWithFixedDelay(this::renewHeartbeat, 0, heartbeat, TimeUnit.SECONDS);
  }

  synchronized void renewHeartbeat() {
    try {
      AgentHeartbeat.renew(client, config.nodeName(), Instant.now());
    } catch (KubernetesClientException e) {
      if (e.getCode() == HttpURLConnection.HTTP_NOT_FOUND) {
        published = null; // someone deleted the profile: publish it again
        publishIfChanged();
      } else {
        log.warn("could not renew the heartbeat of NodeProfile {}: {}", config.nodeName(), e.getMessage());
      }
    } catch (RuntimeException e) {
      log.warn("could not renew the heartbeat of NodeProfile {}", config.nodeName(), e); // and keep renewing
    }
  }

  /** One pass; another soon ({@link #RECHECK_SECONDS}) if it could not publish or the runtime is out of reach. */
  synchronized void publishIfChanged() {
    try {
      NodeProfileSpec current = publishIfChanged(node());
      if (current.runtime != null && current.runtime.restore != null && current.runtime.restore.unreachable()) {
        recheckSoon();
      } else {
        recheckSeconds = RECHECK_SECONDS; // all seen and published
      }
    } catch (KubernetesClientException e) {
      log.warn("could not publish NodeProfile {} (trying again in {} s): {}", config.nodeName(), recheckSeconds,
          e.getMessage());
      recheckSoon();
    }
  }

  /** What it probed, published unless nothing changed since the last pass. */
  private NodeProfileSpec publishIfChanged(Node node) {
    NodeProfileSpec current = overrides.applyTo(probe.probe(config.criu(), config.workDir(), node));
    List<String> warnings = config.kubelet().warnings(); // after the overrides: a test aid hides no warning
    current.warnings = warnings.isEmpty() ? null : warnings;
    current.grantKey = nodeKey.publicKey();
    Map<String, String> labels = labels(node);
    if (published != null && !changed(published, current) && labels.equals(publishedLabels)) {
      return current;
    }
    NodeProfile existing = client.resources(NodeProfile.class).withName(config.nodeName()).get();
    NodeProfile profile = existing != null ? existing : new NodeProfile();
    if (existing == null) {
      profile.setMetadata(new ObjectMetaBuilder().withName(config.nodeName()).build());
    }
    profile.getMetadata().setLabels(labels);
    Map<String, String> annotations = new HashMap<>(Objects.requireNonNullElse(profile.getMetadata().getAnnotations(), Map.of()));
    annotations.remove(ProfileOverrides.ANNOTATION);
    if (!overrides.isEmpty()) {
      annotations.put(ProfileOverrides.ANNOTATION, overrides.describe());
    }
    profile.getMetadata().setAnnotations(annotations);
    profile.setSpec(current);
    if (existing == null) {
      client.resource(profile).create();
    } else {
      client.resource(profile).update();
    }
    if (current.warnings != null && (published == null || published.warnings == null)) {
      NodeProfile warned = client.resources(NodeProfile.class).withName(config.nodeName()).get();
      current.warnings.forEach(w -> events.warning(warned, "InsecureSetting", w));
    }
    published = current;
    publishedLabels = labels;
    log.info("published NodeProfile {}: {} {}, CRIU {}, runtime {}", config.nodeName(), current.arch,
        current.cpu == null ? null : current.cpu.modelName, current.criu == null ? null : current.criu.version,
        current.runtime == null || current.runtime.restore == null ? null : current.runtime.restore.message);
    return current;
  }

  private void recheckSoon() {
    if ((recheck == null || recheck.isDone()) && !timer.isShutdown()) {
      recheck = timer.schedule(this::recheckNow, recheckSeconds, TimeUnit.SECONDS);
      recheckSeconds = Math.min(recheckSeconds * 2, REFRESH_SECONDS);
    }
  }

  private synchronized void recheckNow() {
    recheck = null;
    publishIfChanged();
  }

  /**
   * This node's Node (its labels, the runtime its kubelet reports); null if the agent may not read
   * it. Any other failure to read it is thrown: a profile made without it would be wrong, not
   * merely less complete.
   */
  private Node node() {
    try {
      return client.nodes().withName(config.nodeName()).get();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_FORBIDDEN && e.getCode() != HttpURLConnection.HTTP_UNAUTHORIZED) {
        throw e;
      }
      log.debug("may not read Node {}: {}", config.nodeName(), e.getMessage());
      return null;
    }
  }

  /** The Node's labels with the agent's own labels over them. */
  private Map<String, String> labels(Node node) {
    Map<String, String> labels = new HashMap<>();
    if (node != null && node.getMetadata().getLabels() != null) {
      labels.putAll(node.getMetadata().getLabels());
    }
    labels.putAll(config.labels());
    return labels;
  }

  /** Anything but free space changed, or free space moved by more than {@link #FREE_SPACE_CHANGE}. */
  private static boolean changed(NodeProfileSpec before, NodeProfileSpec now) {
    long was = Objects.requireNonNullElse(before.workDirFreeBytes, 0L);
    long is = Objects.requireNonNullElse(now.workDirFreeBytes, 0L);
    if (Math.abs(is - was) > FREE_SPACE_CHANGE * Math.max(was, 1)) {
      return true;
    }
    return !withoutFreeSpace(before).equals(withoutFreeSpace(now));
  }

  private static ObjectNode withoutFreeSpace(NodeProfileSpec spec) {
    ObjectNode tree = JSON.valueToTree(spec);
    tree.remove("workDirFreeBytes");
    return tree;
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
