package dev.stasis.agent.profile;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.RuntimeSettings;
import dev.stasis.api.NodeProfileSpec.RuntimeInfo;
import dev.stasis.api.NodeProfileSpec.RuntimeRestore;
import io.fabric8.kubernetes.api.model.Node;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

/**
 * Which container runtime the node runs, its version, and whether it restores containers from
 * checkpoint images, by each runtime's own rules (researched in their code and release notes):
 *
 * <ul>
 *   <li>containerd restores from checkpoint images from 2.1.0 through CRI CreateContainer. From 2.2.7
 *       and 2.3.4 (August 2026, after CVEs in that path) only with {@code enable_experimental_restore_via_create
 *       = true} in {@code [plugins."io.containerd.cri.v1.runtime"]} (default false), and not with
 *       {@code enable_criu = false}; 2.4 removed it for the pod-level RestorePod of KEP-5823. The agent
 *       reads containerd's configuration file under its host root.
 *   <li>CRI-O restores from 1.25. The patch releases of September 2026 (1.29 to 1.36 lines) and later
 *       ones restore only with {@code container_level_enabled = "checkpoint_restore"} in
 *       {@code [crio.checkpoint_restore]} (default "checkpoint_only"); before it,
 *       {@code enable_criu_support} in {@code [crio.runtime]} turned checkpoint and restore on or off
 *       together. The agent asks CRI-O for the configuration it runs with.
 * </ul>
 *
 * What the agent cannot see, the node's administrator states with {@code --runtime-restore}; the
 * profile says which source it used.
 */
public final class RuntimeProbe {
  public static final String CONTAINERD = "containerd";
  public static final String CRIO = "cri-o";
  static final String NONE = "none";
  /** The version the kubelet reports while it cannot reach its runtime: a runtime restarting, say. */
  static final String UNREACHABLE = "Unknown";
  static final String RESTORE_VIA_CREATE = "enable_experimental_restore_via_create";
  private static final RuntimeVersion CONTAINERD_RESTORES = RuntimeVersion.of(2, 1, 0);
  private static final RuntimeVersion CONTAINERD_2_2_GATED = RuntimeVersion.of(2, 2, 7);
  private static final RuntimeVersion CONTAINERD_2_3 = RuntimeVersion.of(2, 3, 0);
  private static final RuntimeVersion CONTAINERD_2_3_GATED = RuntimeVersion.of(2, 3, 4);
  private static final RuntimeVersion CONTAINERD_WITHOUT = RuntimeVersion.of(2, 4, 0);
  private static final RuntimeVersion CRIO_RESTORES = RuntimeVersion.of(1, 25, 0);
  private static final Duration CRIO_ANSWER = Duration.ofSeconds(5);

  private final Path hostRoot;
  private final RuntimeSettings settings;

  RuntimeProbe(Path hostRoot, RuntimeSettings settings) {
    this.hostRoot = hostRoot;
    this.settings = settings;
  }

  /** @param node this node's Node, whose kubelet reports the runtime; null when the agent cannot read it */
  RuntimeInfo probe(Node node) {
    RuntimeInfo runtime = new RuntimeInfo();
    String reported = node == null || node.getStatus() == null || node.getStatus().getNodeInfo() == null ? null
        : node.getStatus().getNodeInfo().getContainerRuntimeVersion();
    int scheme = reported == null ? -1 : reported.indexOf("://");
    if (scheme > 0) {
      runtime.name = reported.substring(0, scheme);
      runtime.version = reported.substring(scheme + 3).replaceFirst("^v(?=\\d)", "");
    } else {
      runtime.name = bySocket();
    }
    if (UNREACHABLE.equals(runtime.version)) {
      // The kubelet puts the version back within seconds of the runtime's return: the publisher looks again soon.
      runtime.version = null;
      runtime.restore = new RuntimeRestore(false, RuntimeRestore.UNREACHABLE, "the kubelet cannot reach " + runtime.name
          + " (it reports its version as " + UNREACHABLE + "): the runtime is down or restarting; the agent looks again"
          + " every few seconds", "start " + runtime.name + " on the node, or find in its log why it stopped");
      return runtime;
    }
    runtime.restore = restore(runtime.name, RuntimeVersion.parse(runtime.version), runtime.version);
    return runtime;
  }

  /** Without a Node to ask (a machine that is no cluster node): the runtime whose socket is there. */
  private String bySocket() {
    if (Files.exists(AgentConfig.onHost(hostRoot, settings.crioSocket()))) {
      return CRIO;
    }
    return Files.exists(hostRoot.resolve("run/containerd/containerd.sock")) ? CONTAINERD : NONE;
  }

  private RuntimeRestore restore(String name, RuntimeVersion version, String versionText) {
    if (settings.restore() != RuntimeSettings.Restore.AUTO) {
      boolean enabled = settings.restore() == RuntimeSettings.Restore.ENABLED;
      return new RuntimeRestore(enabled, RuntimeRestore.FROM_AGENT_FLAG, "the node's administrator states that "
          + describe(name, versionText) + (enabled ? " restores" : " does not restore")
          + " containers from checkpoint images (the agent's --runtime-restore=" + settings.restore().flag() + ")",
          enabled ? null : "turn restores on in the runtime, then set the agent's --runtime-restore (Helm"
              + " agent.runtime.restore) to auto or enabled");
    }
    return switch (name) {
      case CONTAINERD -> containerd(version, versionText);
      case CRIO -> crio(version, versionText);
      case NONE -> new RuntimeRestore(false, RuntimeRestore.FROM_RUNTIME, "no container runtime on this node",
          "restore pods on nodes that run containerd or CRI-O");
      default -> new RuntimeRestore(false, RuntimeRestore.FROM_RUNTIME, describe(name, versionText)
          + " does not restore containers from checkpoint images through Kubernetes",
          "restore pods on nodes that run containerd 2.2.7+ or 2.3.4+, or CRI-O 1.25+");
    };
  }

  private RuntimeRestore containerd(RuntimeVersion version, String versionText) {
    String runtime = describe(CONTAINERD, versionText);
    if (version == null) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_RUNTIME, "the kubelet reports no version of containerd,"
          + " whose rules for restores depend on it", "state it with the agent's --runtime-restore=enabled (Helm"
          + " agent.runtime.restore) if this containerd restores from checkpoint images");
    }
    if (version.isBefore(CONTAINERD_RESTORES)) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_VERSION, runtime + " does not restore containers from"
          + " checkpoint images (containerd does from 2.1.0)", "upgrade containerd to 2.2.7+ or 2.3.4+ and set "
          + RESTORE_VIA_CREATE + " = true in [plugins.\"" + ContainerdConfig.RUNTIME_PLUGIN + "\"] of its configuration");
    }
    if (!version.isBefore(CONTAINERD_WITHOUT)) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_VERSION, runtime + " no longer restores containers"
          + " through CreateContainer (removed in 2.4 for the pod-level RestorePod of KEP-5823, which Stasis does not"
          + " use yet)", "restore pods on nodes that run containerd 2.3.4+ of the 2.3 line with " + RESTORE_VIA_CREATE
          + " = true");
    }
    if (version.isBefore(CONTAINERD_2_2_GATED) || version.isIn(CONTAINERD_2_3, CONTAINERD_2_3_GATED)) {
      return new RuntimeRestore(true, RuntimeRestore.FROM_VERSION, runtime + " restores containers from checkpoint"
          + " images with no setting to turn it off (2.2.7 and 2.3.4 added " + RESTORE_VIA_CREATE + ", and fixed"
          + " security flaws of that path: upgrade)", null);
    }
    Path config = settings.containerdConfig();
    String remedy = "set " + RESTORE_VIA_CREATE + " = true in [plugins.\"" + ContainerdConfig.RUNTIME_PLUGIN
        + "\"] of " + config + " and restart containerd";
    ContainerdConfig.RuntimePlugin plugin;
    try {
      plugin = ContainerdConfig.read(hostRoot, config);
    } catch (IOException e) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_VERSION, runtime + " restores from checkpoint images"
          + " only with " + RESTORE_VIA_CREATE + " = true (default false), and the agent cannot read its configuration:"
          + " " + e.getMessage(), remedy + "; point the agent at containerd's configuration with --containerd-config"
          + " (Helm agent.runtime.containerdConfig), or state it with --runtime-restore=enabled");
    }
    String where = plugin.setIn() == null ? config.toString() : plugin.setIn().toString();
    if (!plugin.flag("enable_criu", true)) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_CONFIG, runtime + " has CRIU turned off: enable_criu = false"
          + " in " + where, "remove enable_criu = false and " + remedy);
    }
    if (plugin.flag(RESTORE_VIA_CREATE, false)) {
      return new RuntimeRestore(true, RuntimeRestore.FROM_CONFIG, runtime + " restores from checkpoint images: "
          + RESTORE_VIA_CREATE + " = true in " + where, null);
    }
    return new RuntimeRestore(false, RuntimeRestore.FROM_CONFIG, runtime + " restores from checkpoint images only with "
        + RESTORE_VIA_CREATE + " = true, and it is " + (plugin.has(RESTORE_VIA_CREATE) ? "false in " + where
            : "not set (default false) in " + where), remedy);
  }

  private RuntimeRestore crio(RuntimeVersion version, String versionText) {
    String runtime = describe(CRIO, versionText);
    if (version != null && version.isBefore(CRIO_RESTORES)) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_VERSION, runtime + " does not restore containers from"
          + " checkpoint images (CRI-O does from 1.25)", "upgrade CRI-O");
    }
    Path socket = settings.crioSocket();
    Map<String, Object> config;
    try {
      config = CrioConfig.ask(AgentConfig.onHost(hostRoot, socket), CRIO_ANSWER);
    } catch (IOException e) {
      return new RuntimeRestore(false, RuntimeRestore.FROM_RUNTIME, "the agent cannot ask " + runtime + " for its"
          + " configuration at " + socket + ": " + e.getMessage(), "point the agent at CRI-O's socket with --crio-socket"
          + " (Helm agent.runtime.crioSocket), or state it with --runtime-restore=enabled");
    }
    Map<?, ?> crio = config.get("crio") instanceof Map<?, ?> m ? m : Map.of();
    if (crio.get("checkpoint_restore") instanceof Map<?, ?> table && table.get("container_level_enabled") != null) {
      Object level = table.get("container_level_enabled");
      boolean restores = "checkpoint_restore".equals(level);
      return new RuntimeRestore(restores, RuntimeRestore.FROM_RUNTIME, runtime + " runs with container_level_enabled = \""
          + level + "\" in [crio.checkpoint_restore]" + (restores ? "" : ": it restores only with \"checkpoint_restore\""
              + ("none".equals(level) ? " (CRI-O also falls back to \"none\" without CRIU in its PATH)" : "")),
          restores ? null : "set container_level_enabled = \"checkpoint_restore\" in [crio.checkpoint_restore] of"
              + " CRI-O's configuration (/etc/crio/crio.conf or a file in /etc/crio/crio.conf.d/), install CRIU on"
              + " the node if it lacks it, and restart CRI-O");
    }
    Object criuSupport = crio.get("runtime") instanceof Map<?, ?> runtimeTable ? runtimeTable.get("enable_criu_support") : null;
    boolean restores = Boolean.TRUE.equals(criuSupport);
    return new RuntimeRestore(restores, RuntimeRestore.FROM_RUNTIME, runtime + " runs with enable_criu_support = "
        + criuSupport + " in [crio.runtime]" + (restores ? "" : " (CRI-O also turns it off without CRIU in its PATH)"),
        restores ? null : "set enable_criu_support = true in [crio.runtime] of CRI-O's configuration, install CRIU on"
            + " the node if it lacks it, and restart CRI-O");
  }

  private static String describe(String name, String version) {
    return version == null || version.isBlank() ? name : name + " " + version;
  }
}
