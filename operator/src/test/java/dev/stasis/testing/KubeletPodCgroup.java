package dev.stasis.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * A pod's container cgroup laid out as a kubelet with the systemd driver makes it, in this
 * machine's cgroup v2 hierarchy ({@code kubepods.slice/kubepods-besteffort.slice/
 * kubepods-besteffort-pod<UID>.slice/cri-containerd-<ID>.scope}), holding a process a test
 * started: what the agent sees of a process that runs in that pod. Closing it moves what runs in
 * it (the process, and anything restored into it) back to the hierarchy's root and removes the
 * cgroups it created.
 */
public final class KubeletPodCgroup implements AutoCloseable {
  private final Path root;
  private final List<Path> created = new ArrayList<>();

  private KubeletPodCgroup(Path root) {
    this.root = root;
  }

  /** Moves {@code pid} into a container cgroup of the pod with {@code podUid}. */
  public static KubeletPodCgroup of(String podUid, long pid) throws IOException {
    KubeletPodCgroup cgroup = new KubeletPodCgroup(cgroup2Root());
    Path dir = cgroup.root;
    String container = "cri-containerd-" + UUID.randomUUID().toString().replace("-", "") + ".scope";
    for (String name : List.of("kubepods.slice", "kubepods-besteffort.slice",
        "kubepods-besteffort-pod" + podUid.replace('-', '_') + ".slice", container)) {
      dir = dir.resolve(name);
      if (!Files.isDirectory(dir)) {
        Files.createDirectory(dir);
        cgroup.created.add(dir);
      }
    }
    Files.writeString(dir.resolve("cgroup.procs"), Long.toString(pid));
    return cgroup;
  }

  /** Where cgroup2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid machine. */
  static Path cgroup2Root() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      String[] sides = line.split(" - ");
      if (sides.length == 2 && sides[1].startsWith("cgroup2 ")) {
        return Path.of(sides[0].split(" ")[4]);
      }
    }
    throw new IOException("no cgroup2 hierarchy is mounted on this machine");
  }

  @Override
  public void close() throws IOException {
    Path container = created.get(created.size() - 1);
    for (String pid : Files.readAllLines(container.resolve("cgroup.procs"))) {
      try {
        Files.writeString(root.resolve("cgroup.procs"), pid);
      } catch (IOException e) {
        // it ended meanwhile
      }
    }
    for (int i = created.size() - 1; i >= 0; i--) {
      Files.deleteIfExists(created.get(i));
    }
  }
}
