package dev.stasis.criu;

import java.util.ArrayList;
import java.util.List;

/**
 * What the process tree holds that CRIU must be told of, the same at dump and at restore: the
 * options a tree is dumped with are the ones it must be restored with.
 *
 * @param externalMounts paths of bind mounts the tree uses, which CRIU leaves to the restoring side
 */
public record TreeOptions(boolean tcpEstablished, boolean fileLocks, boolean shellJob, List<String> externalMounts) {
  /** A tree without established connections, file locks, a terminal or external mounts. */
  public static final TreeOptions PLAIN = new TreeOptions(false, false, false, List.of());

  public TreeOptions {
    externalMounts = externalMounts == null ? List.of() : List.copyOf(externalMounts);
  }

  List<String> dumpArguments() {
    List<String> args = shared();
    args.addAll(ExternalMounts.dumpArguments(externalMounts));
    return args;
  }

  List<String> restoreArguments() {
    List<String> args = shared();
    args.addAll(ExternalMounts.restoreArguments(externalMounts));
    return args;
  }

  private List<String> shared() {
    List<String> args = new ArrayList<>();
    if (tcpEstablished) {
      args.add("--tcp-established");
      // No iptables here; CRIU links libnftables (ENVIRONMENT.md).
      args.add("--network-lock");
      args.add("nftables");
    }
    if (fileLocks) args.add("--file-locks");
    if (shellJob) args.add("--shell-job");
    return args;
  }
}
