package dev.stasis.kube;

import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Optional;
import java.util.Set;

/**
 * Who may checkpoint host processes. A process target names a PID on a node, and a node's memory
 * holds other tenants' secrets (the kubelet's credentials among them), so process targets are
 * refused unless a cluster admin allowed them for the Checkpoint's namespace: with the namespace
 * label {@value #LABEL}{@code =true}, or in the operator's and agent's settings. Both roles check.
 */
public class ProcessTargetPolicy {
  public static final String LABEL = "stasis.dev/allow-process-targets";
  /** Allows every namespace: for {@code stasis local}, where the user owns the machine. */
  public static final String ALL = "*";

  private final ClusterCache cluster;
  private final Set<String> allowedNamespaces;

  public ProcessTargetPolicy(ClusterCache cluster, Set<String> allowedNamespaces) {
    this.cluster = cluster;
    this.allowedNamespaces = Set.copyOf(allowedNamespaces);
  }

  public ProcessTargetPolicy(KubernetesClient client, Set<String> allowedNamespaces) {
    this(ClusterCache.reading(client), allowedNamespaces);
  }

  /** Empty when allowed, else the message that tells a person what to do. */
  public Optional<String> refusal(String namespace) {
    if (allowedNamespaces.contains(ALL) || allowedNamespaces.contains(namespace)
        || cluster.allowsProcessTargets(namespace)) {
      return Optional.empty();
    }
    return Optional.of("process targets name host PIDs and are not allowed in namespace " + namespace
        + ": a cluster admin can allow them with `kubectl label namespace " + namespace + " " + LABEL
        + "=true`, or checkpoint a pod instead");
  }

  /** Parses the comma-separated --allow-process-targets setting. */
  public static Set<String> parse(String setting) {
    if (setting == null || setting.isBlank()) {
      return Set.of();
    }
    return Set.of(setting.trim().split("\\s*,\\s*"));
  }
}
