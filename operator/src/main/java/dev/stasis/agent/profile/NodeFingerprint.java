package dev.stasis.agent.profile;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Map;

/** This node's published NodeProfile, as the manifest records it for restores to be matched against. */
public final class NodeFingerprint {
  private static final ObjectMapper JSON = new ObjectMapper();

  private NodeFingerprint() {}

  public static NodeProfileSpec profile(KubernetesClient client, String node) {
    NodeProfile profile = client.resources(NodeProfile.class).withName(node).get();
    return profile == null ? null : profile.getSpec();
  }

  /** What placement matches on: everything but the agent's key, which says nothing about what the node can run. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> asMap(NodeProfileSpec profile) {
    if (profile == null) {
      return null;
    }
    Map<String, Object> fields = JSON.convertValue(profile, Map.class);
    fields.remove("grantKey");
    return fields;
  }
}
