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
    /** Container runtime family (cri-o, containerd) or "none" for process-only nodes. */
    public String name;
    public String version;
  }
}
