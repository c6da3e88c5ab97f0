package dev.stasis.agent.process;

import dev.stasis.agent.WorkFailure;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which processes on this node a namespace may checkpoint, and whether it may restore a process
 * checkpoint here. A process target names a PID, and a node's processes hold what other tenants
 * must not read: the kubelet's and the runtime's credentials, etcd's data, other pods' memory. So,
 * by default, a process target must belong to a pod of the Checkpoint's own namespace running on
 * this node; the agent sees that in the process's cgroup, where the kubelet puts each pod's
 * containers ({@code .../kubepods.../pod<UID>...}), and finds the Pod of that UID in that
 * namespace. Processes in no pod (host processes) only for namespaces a cluster admin named in the
 * agent's settings ({@code --allow-host-processes}, Helm {@code allowHostProcesses}): nothing a
 * tenant can set, such as a namespace label. A restore of a process checkpoint makes a tree in no
 * pod, so it needs that same allowance.
 */
public final class ProcessTargetPolicy {
  /** Allows every namespace: for a cluster (or a test) where one admin owns every namespace. */
  public static final String ALL = "*";
  static final String FLAG = "--allow-host-processes";
  /** A pod's cgroup as the kubelet names it, with the cgroupfs driver ({@code pod<uid>}) or the systemd one ({@code ...-pod<uid with _>.slice}). */
  private static final Pattern POD_CGROUP = Pattern.compile(
      "(?:^|[/-])pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\\.slice)?(?=/|$)");

  private final KubernetesClient client;
  private final String node;
  private final Set<String> hostProcessNamespaces;

  public ProcessTargetPolicy(KubernetesClient client, String node, Set<String> hostProcessNamespaces) {
    this.client = client;
    this.node = node;
    this.hostProcessNamespaces = Set.copyOf(hostProcessNamespaces);
  }

  /** Refuses a PID that is neither a process of a pod of {@code namespace} on this node nor a host process it may take. */
  public void requireCheckpointable(String namespace, long pid) throws WorkFailure {
    Set<String> podUids = podUidsOf(pid);
    if (podUids.isEmpty()) {
      if (!allowsHostProcesses(namespace)) {
        throw new WorkFailure("ProcessTargetNotAllowed", "PID " + pid + " on node " + node + " belongs to no pod: it is"
            + " a process of the node itself, and those may only be checkpointed from namespaces a cluster admin"
            + " named in the agent's " + FLAG + " (Helm value allowHostProcesses), which " + namespace + " is not."
            + " Checkpoint a process of one of this namespace's pods, or ask a cluster admin");
      }
      return;
    }
    if (podUids.size() > 1 || podOf(namespace, podUids.iterator().next()).isEmpty()) {
      throw new WorkFailure("ProcessOfAnotherNamespace", "PID " + pid + " on node " + node + " belongs to a pod that is"
          + " not one of namespace " + namespace + "'s: a process target must be a process of a pod of the"
          + " Checkpoint's own namespace");
    }
  }

  /**
   * A restored tree runs on this node in no pod, as a host process: a Restore's namespace must be
   * allowed host processes, whatever the checkpointed process was.
   */
  public void requireRestorable(String namespace) throws WorkFailure {
    if (!allowsHostProcesses(namespace)) {
      throw new WorkFailure("ProcessTargetNotAllowed", "restoring a process checkpoint starts a process tree on node "
          + node + " outside any pod, which only namespaces a cluster admin named in the agent's " + FLAG
          + " (Helm value allowHostProcesses) may do; " + namespace + " is not one of them. Nothing was restored");
    }
  }

  boolean allowsHostProcesses(String namespace) {
    return hostProcessNamespaces.contains(ALL) || hostProcessNamespaces.contains(namespace);
  }

  /** The Pod of {@code uid} among the pods of {@code namespace} on this node. */
  private Optional<Pod> podOf(String namespace, String uid) {
    return client.pods().inNamespace(namespace).withField("spec.nodeName", node).list().getItems().stream()
        .filter(p -> uid.equals(p.getMetadata().getUid())).findFirst();
  }

  /** The UIDs of the pods whose cgroups hold the process (one, or none for a host process). */
  static Set<String> podUidsOf(long pid) throws WorkFailure {
    try {
      return podUids(Files.readString(Path.of("/proc", Long.toString(pid), "cgroup")));
    } catch (IOException e) {
      throw new WorkFailure("ProcessNotFound", "no process with PID " + pid + " runs on this node: check spec.target.process.pid");
    }
  }

  /** The pod UIDs in a /proc/PID/cgroup file: its paths under the kubelet's kubepods cgroups. */
  static Set<String> podUids(String cgroups) {
    Set<String> uids = new TreeSet<>();
    for (String line : cgroups.split("\n")) {
      String path = line.substring(line.indexOf(':', line.indexOf(':') + 1) + 1);
      if (!path.contains("kubepods")) {
        continue;
      }
      Matcher m = POD_CGROUP.matcher(path);
      while (m.find()) {
        uids.add(m.group(1).replace('_', '-').toLowerCase(Locale.ROOT));
      }
    }
    return uids;
  }

  /** Parses the comma-separated {@value #FLAG} setting. */
  public static Set<String> parse(String setting) {
    if (setting == null || setting.isBlank()) {
      return Set.of();
    }
    return Set.of(setting.trim().split("\\s*,\\s*"));
  }
}
