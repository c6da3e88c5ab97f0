package dev.stasis.agent.profile;

import dev.stasis.agent.RuntimeSettings;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuVersion;
import io.fabric8.kubernetes.api.model.Node;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Observes what this node offers a restore: CPU, kernel, OS, CRIU, the container runtime and
 * whether it restores, GPUs, free space. The OS and the runtime's configuration are the node's as
 * seen under the agent's host root (in a pod with hostPID, /proc/1/root), not its image's.
 */
class NodeProfileProbe {
  private final Path proc;
  private final Path etc;
  private final Path dev;
  private final RuntimeProbe runtime;
  private final Map<String, Criu.Features> featureCache = new ConcurrentHashMap<>();

  NodeProfileProbe(Path hostRoot, RuntimeSettings runtime) {
    this.proc = Path.of("/proc");
    this.etc = hostRoot.resolve("etc");
    this.dev = Path.of("/dev");
    this.runtime = new RuntimeProbe(hostRoot, runtime);
  }

  /** @param node this node's Node (the kubelet reports the runtime there); null when the agent cannot read it */
  NodeProfileSpec probe(Criu criu, Path workDir, Node node) {
    NodeProfileSpec spec = new NodeProfileSpec();
    spec.arch = System.getProperty("os.arch").equals("amd64") ? "x86_64" : System.getProperty("os.arch");
    spec.cpu = cpu();
    spec.kernelRelease = read(proc.resolve("sys/kernel/osrelease")).trim();
    // The unified hierarchy has cgroup.controllers at its root; v1 has a hierarchy per controller.
    spec.cgroupVersion = Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers")) ? "v2" : "v1";
    spec.os = os();
    spec.criu = criu(criu, spec.kernelRelease);
    spec.runtime = runtime.probe(node);
    spec.gpus = gpus();
    try {
      Files.createDirectories(workDir);
      spec.workDirFreeBytes = Files.getFileStore(workDir).getUsableSpace();
    } catch (IOException e) {
      spec.workDirFreeBytes = 0L;
    }
    return spec;
  }

  /** The first processor's block of /proc/cpuinfo describes them all on the machines CRIU supports. */
  NodeProfileSpec.CpuInfo cpu() {
    Map<String, String> first = new LinkedHashMap<>();
    for (String line : read(proc.resolve("cpuinfo")).split("\n")) {
      if (line.isBlank()) {
        if (!first.isEmpty()) break;
        continue;
      }
      int colon = line.indexOf(':');
      if (colon > 0) {
        first.putIfAbsent(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
      }
    }
    var cpu = new NodeProfileSpec.CpuInfo();
    cpu.vendor = first.get("vendor_id");
    cpu.family = first.get("cpu family");
    cpu.model = first.get("model");
    cpu.modelName = first.get("model name");
    String flags = first.getOrDefault("flags", first.getOrDefault("Features", ""));
    cpu.flags = new ArrayList<>(new TreeSet<>(Arrays.asList(flags.split("\\s+"))));
    cpu.flags.removeIf(String::isBlank);
    return cpu;
  }

  private NodeProfileSpec.OsInfo os() {
    Map<String, String> release = new LinkedHashMap<>();
    for (String line : read(etc.resolve("os-release")).split("\n")) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        release.put(line.substring(0, eq), line.substring(eq + 1).replace("\"", ""));
      }
    }
    var os = new NodeProfileSpec.OsInfo();
    os.id = release.get("ID");
    os.versionId = release.get("VERSION_ID");
    os.prettyName = release.get("PRETTY_NAME");
    return os;
  }

  private NodeProfileSpec.CriuInfo criu(Criu criu, String kernelRelease) {
    var info = new NodeProfileSpec.CriuInfo();
    info.version = criu.version().map(CriuVersion::toString).orElse("");
    if (info.version.isEmpty()) {
      info.checkPassed = false;
      info.checkMessage = "CRIU is not installed at " + criu.executable();
    } else {
      Criu.CheckResult check = criu.check();
      info.checkPassed = check.passed();
      info.checkMessage = check.message();
      // About 45 CRIU runs: only again when CRIU or the kernel changed.
      Criu.Features features = featureCache.computeIfAbsent(
          criu.executable() + " " + info.version + " " + kernelRelease, key -> criu.features());
      info.features = new ArrayList<>(features.present());
      info.missingFeatures = new ArrayList<>(features.missing());
    }
    return info;
  }

  private List<String> gpus() {
    List<String> gpus = new ArrayList<>();
    try (var devices = Files.list(dev)) {
      devices.map(p -> p.getFileName().toString())
          .filter(n -> n.matches("nvidia\\d+") || n.matches("kfd"))
          .sorted()
          .forEach(gpus::add);
    } catch (IOException e) {
      // no /dev to look at: no GPUs to report
    }
    return gpus;
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      return "";
    }
  }
}
