package dev.stasis.agent.work;

import dev.stasis.agent.WorkFailure;
import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.image.Registry;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.kube.WorkGrants;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Optional;

/**
 * The storage a job names, reached with what the operator granted that job (its status' sealed
 * grant, opened with this node's key): the agent may read no Secret itself. Failures come in the
 * words the job's status needs.
 */
public class StorageAccess {
  static final String KEY_NOT_FOUND = "EncryptionKeyNotFound";
  /** The grant is sealed to a key this agent no longer has; the operator seals it again. */
  static final String NODE_KEY_CHANGED = "NodeKeyChanged";

  private final StorageBinding binding;
  private final NodeKey nodeKey;
  private final String node;

  StorageAccess(KubernetesClient client, NodeKey nodeKey, String node) {
    this.binding = new StorageBinding(client);
    this.nodeKey = nodeKey;
    this.node = node;
  }

  public CheckpointStorage find(String name) throws WorkFailure {
    CheckpointStorage storage = name == null ? null : binding.find(name);
    if (storage == null) {
      throw new WorkFailure("StorageNotFound", "CheckpointStorage '" + name + "' no longer exists");
    }
    return storage;
  }

  /** The key this node's agent publishes, which the operator seals grants to. */
  NodeKey nodeKey() {
    return nodeKey;
  }

  /** Whether the work's grant opens with this agent's key (or there is none, for work that needs nothing). */
  public boolean grantReady(CustomResource<?, ? extends AgentWorkStatus> work) {
    var status = work.getStatus();
    return status == null || status.grant == null || nodeKey.fingerprint().equals(status.grant.nodeKey);
  }

  /**
   * What the operator granted this work: storage and registry credentials, the keys of its
   * archives. None for work that needs none (a filesystem storage that does not encrypt).
   */
  public WorkGrants.Grant grant(CustomResource<?, ? extends AgentWorkStatus> work) throws WorkFailure {
    var sealed = work.getStatus() == null ? null : work.getStatus().grant;
    if (sealed == null) {
      return new WorkGrants.Grant(null, null, null, null, List.of());
    }
    if (!nodeKey.fingerprint().equals(sealed.nodeKey)) {
      throw new WorkFailure(NODE_KEY_CHANGED, "this work's grant is sealed to node key " + sealed.nodeKey
          + ", which this agent no longer has (its key is " + nodeKey.fingerprint() + "): the operator seals it again");
    }
    try {
      return WorkGrants.open(sealed, nodeKey, work, node);
    } catch (WorkGrants.GrantException e) {
      throw new WorkFailure("GrantInvalid", e.getMessage());
    }
  }

  /**
   * The key the archive {@code identity} is encrypted with when this storage stores it, as granted;
   * empty when the storage does not encrypt.
   */
  public Optional<BoundKey> encryptionKey(CheckpointStorage storage, WorkGrants.Grant grant, ArchiveIdentity identity)
      throws WorkFailure {
    if (storage.getSpec() == null || storage.getSpec().encryption == null) {
      return Optional.empty();
    }
    return Optional.of(grant.key(identity).orElseThrow(() -> new WorkFailure("GrantInvalid", "CheckpointStorage '"
        + storage.getMetadata().getName() + "' encrypts, but the operator granted no key for " + identity
        + ": the storage's encryption was turned on after this work was assigned; take a new checkpoint")));
  }

  /**
   * The key the manifest says its archive was encrypted with, as granted; empty for an archive that
   * is not encrypted. The manifest is the one the Checkpoint recorded, so "not encrypted" is
   * believed: such an archive was stored before the storage encrypted.
   */
  public Optional<BoundKey> decryptionKey(RecordedManifest recorded, WorkGrants.Grant grant) throws WorkFailure {
    Manifest.Encryption encryption = recorded.manifest().archive.encryption;
    if (!encryption.isEncrypted()) {
      return Optional.empty();
    }
    Optional<BoundKey> key = grant.key(recorded.identity()).filter(k -> k.keyId().equals(encryption.keyId));
    if (key.isEmpty()) {
      throw new WorkFailure(KEY_NOT_FOUND, "the archive is encrypted with key '" + encryption.keyId
          + "', but the operator granted this restore no such key for " + recorded.identity());
    }
    return key;
  }

  /**
   * The chunk key a deduplicated checkpoint's chunks were named (and sealed) with, as granted; empty
   * for a whole archive.
   */
  public Optional<ChunkKey> chunkKey(RecordedManifest recorded, WorkGrants.Grant grant) throws WorkFailure {
    Manifest.Chunks chunks = recorded.manifest().chunks;
    if (chunks == null) {
      return Optional.empty();
    }
    return Optional.of(grant.chunkKey(chunks.keyId).orElseThrow(() -> new WorkFailure(KEY_NOT_FOUND, "the"
        + " checkpoint's chunks are named with key '" + chunks.keyId + "', but the operator granted this restore no"
        + " chunk key of that id")));
  }

  /**
   * The manifest of {@code checkpoint} (of its {@code container}; null for a process checkpoint),
   * checked against what the Checkpoint's status recorded.
   */
  public RecordedManifest manifest(ObjectStore store, Checkpoint checkpoint, String container) throws WorkFailure {
    try {
      return RecordedManifest.read(store, checkpoint, container);
    } catch (StoredCheckpointException e) {
      throw new WorkFailure(e.reason(), e.getMessage());
    }
  }

  public ObjectStore open(CheckpointStorage storage, WorkGrants.Grant grant) throws WorkFailure {
    try {
      return binding.open(storage, grant.s3());
    } catch (StorageUnavailableException e) {
      // Opening only reads the storage's settings: what fails here is a setting, not an outage.
      throw new WorkFailure("StorageMisconfigured", e.getMessage());
    }
  }

  public Registry registry(CheckpointStorage storage, WorkGrants.Grant grant) throws WorkFailure {
    try {
      return binding.registry(storage, grant.registry(), grant.registryCa());
    } catch (StorageUnavailableException e) {
      throw new WorkFailure("RegistryNotConfigured", e.getMessage());
    }
  }
}
