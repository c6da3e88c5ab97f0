package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
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

  @Default("true")
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

    @Min(0)
    @Max(100)
    @Default("10")
    @JsonPropertyDescription("Deduplicated checkpoints: the space the packs may hold that no checkpoint uses any more,"
        + " in percent of the space the chunks in use take (default 10). Beyond it the collection rewrites the packs"
        + " with the most unused space. Lower stores less and rewrites more at each collection.")
    public Integer maxUnusedPercent;
  }

  /** What {@code garbageCollection.maxUnusedPercent} says when it is not set. */
  public static final int DEFAULT_MAX_UNUSED_PERCENT = 10;

  public Compression compressionOrDefault() {
    return compression != null ? compression : Compression.zstd;
  }

  public boolean deduplicationOrDefault() {
    return !Boolean.FALSE.equals(deduplication);
  }

  public int maxUnusedPercentOrDefault() {
    return garbageCollection == null || garbageCollection.maxUnusedPercent == null ? DEFAULT_MAX_UNUSED_PERCENT
        : garbageCollection.maxUnusedPercent;
  }

  public boolean allows(String namespace) {
    return allowedNamespaces == null || allowedNamespaces.isEmpty() || allowedNamespaces.contains(namespace);
  }

  public boolean isDefault() {
    return Boolean.TRUE.equals(isDefault);
  }
}
