package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.RuntimeSettings;
import dev.stasis.agent.TravellingFileLimits;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.agent.work.NodeWorkQueue;
import dev.stasis.criu.Criu;
import dev.stasis.kube.RetryPolicy;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** The agent's flags: {@code stasis agent} takes them, and {@code stasis local} with local defaults. */
final class AgentOptions {
  private static final Logger LOG = LoggerFactory.getLogger(AgentOptions.class);

  @Spec(Spec.Target.MIXEE)
  CommandSpec command;

  @Option(names = "--work-dir", paramLabel = "DIR", converter = Converters.DirectoryPath.class, order = 10,
      description = "Folder for CRIU images, downloads and the agent's key (default: /var/lib/stasis;"
          + " local: STATE-DIR/work).")
  Path workDir;

  @Option(names = "--criu", paramLabel = "PATH", order = 11,
      description = "The criu to run (default: ~/.cache/stasis/bin/criu, then .stasis/bin/criu, then criu on"
          + " the PATH). Without a working CRIU the node's profile says so and it takes no process work.")
  Path criu;

  @Option(names = "--criu-env", paramLabel = "K=V", split = ",", order = 12,
      description = "Extra environment for CRIU, e.g. CRIU_FAULT=130 for CRIU 4.1 on machines without hardware"
          + " breakpoints.")
  Map<String, String> criuEnv = new LinkedHashMap<>();

  @Option(names = "--allow-host-processes", paramLabel = "NS,...|*", order = 13,
      description = "Namespaces whose Checkpoints may name processes in no pod (the node's own) and whose"
          + " Restores may restore process checkpoints (default: none; local: default).")
  String allowHostProcesses;

  @Option(names = "--node-labels", paramLabel = "K=V", split = ",", order = 14,
      description = "Labels of the node's NodeProfile, over the Node's own (spec.placement.nodeSelector"
          + " matches them).")
  Map<String, String> nodeLabels = new LinkedHashMap<>();

  @Option(names = "--host-root", paramLabel = "DIR", converter = Converters.ExistingDirectory.class,
      defaultValue = "/", order = 15,
      description = "The node's / as the agent sees it (default: ${DEFAULT-VALUE}); the pre-flight looks up"
          + " paths under it.")
  Path hostRoot;

  @Option(names = "--profile-overrides", paramLabel = "FILE", converter = Converters.ReadableFile.class, order = 16,
      description = "Test aid: a JSON merge patch over the NodeProfile the agent observed.")
  Path profileOverrides;

  @Option(names = "--max-concurrent", paramLabel = "N", converter = Converters.Positive.class,
      defaultValue = "" + NodeWorkQueue.DEFAULT_SLOTS, order = 17,
      description = "Checkpoints and restores run at once (default: ${DEFAULT-VALUE}); the rest wait in line.")
  int maxConcurrent;

  @Option(names = "--retry-backoff", paramLabel = "DURATION", converter = Converters.PositiveDuration.class,
      defaultValue = "10s", order = 18,
      description = "Wait before the first retry of transiently failed work, doubling up to 5m"
          + " (default: ${DEFAULT-VALUE}).")
  Duration retryBackoff;

  @Option(names = "--travelling-files-max-count", paramLabel = "N", converter = Converters.NonNegative.class,
      defaultValue = "" + TravellingFileLimits.DEFAULT_MAX_FILES, order = 19,
      description = "At most this many of a job's files on tmpfs (MPI's /dev/shm segments) travel with one process"
          + " checkpoint (default: ${DEFAULT-VALUE}); a job holding more is refused (TravellingFilesTooLarge).")
  int travellingFilesMaxCount;

  @Option(names = "--travelling-files-max-bytes", paramLabel = "BYTES", converter = Converters.ByteCount.class,
      defaultValue = "" + TravellingFileLimits.DEFAULT_MAX_BYTES, order = 19,
      description = "At most this many bytes of a job's files on tmpfs travel with one process checkpoint"
          + " (default: ${DEFAULT-VALUE}, 1 GiB); a job holding more is refused (TravellingFilesTooLarge).")
  long travellingFilesMaxBytes;

  @Option(names = "--kubelet-url", paramLabel = "URL", converter = Converters.HttpUrl.class, order = 20,
      description = "Pod checkpoints: the node's kubelet (default: https://NODE:10250).")
  URI kubeletUrl;

  @Option(names = "--kubelet-ca", paramLabel = "FILE", converter = Converters.ReadableFile.class, order = 21,
      description = "Pod checkpoints: the CA of the kubelet's serving certificate (default: the ServiceAccount's"
          + " ca.crt).")
  Path kubeletCa;

  @Option(names = "--kubelet-token-file", paramLabel = "FILE", converter = Converters.ReadableFile.class, order = 22,
      description = "Pod checkpoints: the token shown to the kubelet (default: the ServiceAccount's token).")
  Path kubeletTokenFile;

  @Option(names = "--kubelet-checkpoint-dir", paramLabel = "DIR", converter = Converters.DirectoryPath.class,
      order = 23, description = "Pod checkpoints: where the kubelet writes its archives (default:"
          + " /var/lib/kubelet/checkpoints).")
  Path kubeletCheckpointDir;

  @Option(names = "--kubelet-insecure-skip-tls-verify", order = 24,
      description = "Pod checkpoints: do not check the kubelet's certificate (warned about on the NodeProfile).")
  boolean kubeletInsecureSkipTlsVerify;

  @Option(names = "--containerd-config", paramLabel = "FILE", order = 30,
      description = "The container runtime, as the node sees it: containerd's configuration (default: "
          + "/etc/containerd/config.toml).")
  Path containerdConfig = RuntimeSettings.CONTAINERD_CONFIG;

  @Option(names = "--crio-socket", paramLabel = "FILE", order = 31,
      description = "The container runtime, as the node sees it: CRI-O's socket (default: /run/crio/crio.sock).")
  Path crioSocket = RuntimeSettings.CRIO_SOCKET;

  @Option(names = "--runtime-restore", paramLabel = "auto|enabled|disabled", converter = Converters.RuntimeRestore.class,
      defaultValue = "auto", order = 32,
      description = "Whether the runtime restores containers from checkpoint images (default: ${DEFAULT-VALUE}:"
          + " the agent finds out).")
  RuntimeSettings.Restore runtimeRestore;

  @Option(names = "--container-storage-dir", paramLabel = "DIR", converter = Converters.DirectoryPath.class,
      order = 33, description = "Pod restores: where the runtime keeps images, for the free-space check"
          + " (default: the runtime's own, /var/lib/containerd or /var/lib/containers/storage).")
  Path containerStorageDir;

  /** The flag changed meaning; a cluster's old arguments must not pass silently. */
  @Option(names = "--allow-process-targets", paramLabel = "NS,...", hidden = true)
  void allowProcessTargets(String value) {
    throw new ParameterException(command.commandLine(), "--allow-process-targets is gone: a process of a pod of"
        + " the Checkpoint's own namespace needs no allowance any more, and --allow-host-processes NS,... names the"
        + " namespaces that may checkpoint processes in no pod and restore process checkpoints (no namespace label"
        + " allows that)");
  }

  /**
   * The agent's settings, with what this command defaults to where a flag was not given.
   *
   * @param hostProcesses namespaces allowed host processes unless --allow-host-processes says otherwise
   */
  AgentConfig config(String node, Path defaultWorkDir, Set<String> hostProcesses) {
    Set<String> allowed = allowHostProcesses == null ? hostProcesses : ProcessTargetPolicy.parse(allowHostProcesses);
    return new AgentConfig(node, workDir != null ? workDir : defaultWorkDir, new Criu(Main.criuPath(criu), criuEnv),
        allowed, kubelet(node), hostRoot, nodeLabels, profileOverrides, maxConcurrent,
        RetryPolicy.withBase(retryBackoff),
        new RuntimeSettings(containerdConfig, crioSocket, runtimeRestore, containerStorageDir),
        new TravellingFileLimits(travellingFilesMaxCount, travellingFilesMaxBytes));
  }

  /** The kubelet of the agent's node; by default as a DaemonSet pod with its ServiceAccount sees it. */
  private KubeletSettings kubelet(String node) {
    KubeletSettings defaults = KubeletSettings.defaults(node);
    var settings = new KubeletSettings(
        kubeletUrl != null ? kubeletUrl : defaults.url(),
        kubeletTokenFile != null ? kubeletTokenFile : defaults.tokenFile(),
        kubeletCa != null ? kubeletCa : defaults.caFile(),
        kubeletInsecureSkipTlsVerify,
        kubeletCheckpointDir != null ? kubeletCheckpointDir : defaults.checkpointDir(),
        defaults.answerGrace());
    settings.warnings().forEach(LOG::warn);
    return settings;
  }
}
