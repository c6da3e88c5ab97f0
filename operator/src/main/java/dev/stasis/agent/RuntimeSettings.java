package dev.stasis.agent;

import dev.stasis.agent.profile.RuntimeProbe;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What the agent needs to know about its node's container runtime beyond what the kubelet reports:
 * where containerd's configuration and CRI-O's socket are (paths as the node sees them, looked up
 * under the agent's host root), whether the node's administrator states that the runtime restores
 * containers from checkpoint images (for what the agent cannot see), and where the runtime keeps
 * its images.
 *
 * @param storageDir null: the runtime's default (containerd /var/lib/containerd, CRI-O
 *     /var/lib/containers/storage)
 */
public record RuntimeSettings(Path containerdConfig, Path crioSocket, Restore restore, Path storageDir) {
  public static final Path CONTAINERD_CONFIG = Path.of("/etc/containerd/config.toml");
  public static final Path CRIO_SOCKET = Path.of("/run/crio/crio.sock");
  private static final Path CONTAINERD_STORAGE = Path.of("/var/lib/containerd");
  private static final Path CRIO_STORAGE = Path.of("/var/lib/containers/storage");

  /** --runtime-restore: auto (the agent finds out), or what the administrator says. */
  public enum Restore {
    AUTO, ENABLED, DISABLED;

    public static Restore parse(String value) {
      try {
        return valueOf(value.toUpperCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--runtime-restore wants auto, enabled or disabled, got '" + value + "'");
      }
    }

    public String flag() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public static RuntimeSettings defaults() {
    return new RuntimeSettings(CONTAINERD_CONFIG, CRIO_SOCKET, Restore.AUTO, null);
  }

  public RuntimeSettings withRestore(Restore stated) {
    return new RuntimeSettings(containerdConfig, crioSocket, stated, storageDir);
  }

  /** Where the runtime named so keeps its images, as the node sees it. */
  public Path storageDir(String runtime) {
    if (storageDir != null) {
      return storageDir;
    }
    return RuntimeProbe.CRIO.equals(runtime) ? CRIO_STORAGE : CONTAINERD_STORAGE;
  }
}
