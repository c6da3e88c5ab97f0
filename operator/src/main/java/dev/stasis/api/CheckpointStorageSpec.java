package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.List;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.s3) != has(self.filesystem)",
    message = "set exactly one of s3 (an S3-compatible bucket) or filesystem (a path on the nodes)")
public class CheckpointStorageSpec {
  @JsonProperty("default")
  @JsonPropertyDescription("Checkpoints that name no storage use the storage marked default.")
  public Boolean isDefault;

  public S3Storage s3;

  public FileSystemStorage filesystem;

  @JsonPropertyDescription("Namespaces whose Checkpoints may write here; empty: every namespace.")
  public List<String> allowedNamespaces;

  @JsonPropertyDescription("OCI registry for the checkpoint images that pod checkpoints are restored from (CRI-O, containerd 2.1+).")
  public RegistrySpec registry;

  @Default("zstd")
  @JsonPropertyDescription("How archives are compressed: zstd (default) or none.")
  public Compression compression;

  @Default("false")
  @JsonPropertyDescription("Deduplicate checkpoints: their memory (for pods, the memory images in the kubelet's"
      + " archive) is stored as chunks shared with the earlier checkpoints of the same namespace in this storage, so a"
      + " checkpoint uploads and stores only what changed (status.archive.newBytes).")
  public Boolean deduplication;

  @JsonPropertyDescription("Encrypt archives (AES-256-GCM, on the node, before they leave it) with keys from a Secret."
      + " Archives hold process memory: passwords, tokens, keys.")
  public EncryptionSpec encryption;

  @JsonPropertyDescription("Removal of stored objects whose Checkpoint no longer exists (crashed uploads, force-deleted"
      + " Checkpoints). Turn it off when something else writes checkpoint-like keys under the same bucket and prefix.")
  public GarbageCollection garbageCollection;

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class GarbageCollection {
    @Default("true")
    public Boolean enabled;

    @Pattern(CheckpointSpec.DURATION_PATTERN)
    @JsonPropertyDescription("Leave objects alone until they are this old (default 1h), so that nothing being written is"
        + " touched.")
    public String gracePeriod;
  }

  public Compression compressionOrDefault() {
    return compression != null ? compression : Compression.zstd;
  }

  public boolean deduplicationOrDefault() {
    return Boolean.TRUE.equals(deduplication);
  }

  public boolean allows(String namespace) {
    return allowedNamespaces == null || allowedNamespaces.isEmpty() || allowedNamespaces.contains(namespace);
  }

  public boolean isDefault() {
    return Boolean.TRUE.equals(isDefault);
  }
}
