package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.ArrayList;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class NodeProfileSpec {
  /** Machine architecture as the kernel names it (x86_64, aarch64). */
  public String arch;
  public CpuInfo cpu;
  public String kernelRelease;
  /** v1 or v2: the cgroup hierarchy the node's containers and processes live in. */
  public String cgroupVersion;
  public OsInfo os;
  public CriuInfo criu;
  public RuntimeInfo runtime;
  /** GPU device nodes (/dev/nvidia0, /dev/kfd); CRIU cannot restore GPU state yet. */
  public List<String> gpus = new ArrayList<>();
  /** Free bytes in the agent's work folder, where a restore unpacks the archive. */
  public Long workDirFreeBytes;
  /** Settings of this node's agent that weaken its security, e.g. kubelet TLS verification off. */
  public List<String> warnings;
  /**
   * The agent's public key (X25519, X.509, base64): the operator seals to it what this node's work
   * needs (status.grant of its Checkpoints and Restores). Only this node's agent may write it.
   */
  public String grantKey;

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class CpuInfo {
    public String vendor;
    public String family;
    public String model;
    public String modelName;
    public List<String> flags = new ArrayList<>();
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class OsInfo {
    public String id;
    public String versionId;
    public String prettyName;
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class CriuInfo {
    /** e.g. 4.2.1; empty when CRIU is missing on the node. */
    public String version;
    /** Whether `criu check` passed. */
    public Boolean checkPassed;
    public String checkMessage;
    /** Features `criu check --feature` confirms on this node (mnt_id, timens, network_lock_nftables, ...). */
    public List<String> features = new ArrayList<>();
    /** Features this CRIU knows but the node lacks (e.g. mem_dirty_track without soft-dirty support). */
    public List<String> missingFeatures = new ArrayList<>();
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class RuntimeInfo {
    /**
     * Container runtime family (containerd, cri-o, or another the kubelet names), or "none" for
     * process-only nodes.
     */
    public String name;
    /** As the kubelet reports it (the Node's status.nodeInfo.containerRuntimeVersion), e.g. 2.3.4. */
    public String version;
    /** Whether the runtime restores containers from checkpoint images, and how the agent knows. */
    public RuntimeRestore restore;
  }

  /**
   * Whether this node's container runtime restores containers from checkpoint images, which pod
   * restores need: by the runtime's rules for its version and the setting that turns it on.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class RuntimeRestore {
    public static final String FROM_RUNTIME = "Runtime";
    public static final String FROM_CONFIG = "RuntimeConfig";
    public static final String FROM_VERSION = "RuntimeVersion";
    public static final String FROM_AGENT_FLAG = "AgentFlag";
    public static final String UNREACHABLE = "Unreachable";

    /** True only when the runtime restores; false when it does not or the agent cannot tell. */
    public Boolean enabled;
    /**
     * Where that comes from: Runtime (the runtime answered), RuntimeConfig (its configuration file
     * as the node has it), RuntimeVersion (a rule of that version, no setting to read), AgentFlag
     * (the agent's --runtime-restore, for what the agent cannot see), or Unreachable (the kubelet
     * cannot reach the runtime just now, so nothing is known: Restores wait for it).
     */
    public String source;
    /** What the agent found, in words: the version's rule, the setting and where it is set. */
    public String message;
    /** When it does not restore: what to change on the node so that it does. */
    public String remedy;

    public RuntimeRestore() {}

    public RuntimeRestore(boolean enabled, String source, String message, String remedy) {
      this.enabled = enabled;
      this.source = source;
      this.message = message;
      this.remedy = remedy;
    }

    public boolean restores() {
      return Boolean.TRUE.equals(enabled);
    }

    /** The runtime is down or restarting: this says nothing of what it does once it is back. */
    public boolean unreachable() {
      return UNREACHABLE.equals(source);
    }
  }
}
