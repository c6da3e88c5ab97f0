package dev.stasis.operator;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.SealedGrant;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveKeys;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EncryptionKeyException;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import dev.stasis.operator.retention.ChunkSweepLock;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Issues what the agent of a node needs for one Checkpoint or Restore ({@link WorkGrants}): the
 * credentials of its storage (and of its registry, for a pod restore) and the keys of exactly the
 * archives it writes or reads, derived from the storage's key, sealed to the key that node's agent
 * published in its NodeProfile. The operator alone reads the storages' Secrets.
 */
final class GrantIssuer {
  static final String KEY_NOT_FOUND = "EncryptionKeyNotFound";

  /**
   * Whether a Checkpoint may be given the key to write chunks to a storage now: not while that
   * storage's sweep of the Checkpoint's namespace runs ({@link ChunkSweepLock#grant}).
   */
  @FunctionalInterface
  interface ChunkKeyGate {
    boolean mayGrant(CheckpointStorage storage, HasMetadata checkpoint);

    /**
     * For Restores, which are granted chunk keys of manifests ({@code chunkKeyOf}), never the key
     * to write chunks: what a manifest refers to is never swept, so they never wait.
     */
    ChunkKeyGate NEVER_ASKED = (storage, checkpoint) -> {
      throw new IllegalStateException("restores are granted chunk keys without the sweep lock");
    };

    static ChunkKeyGate of(ChunkSweepLock lock) {
      return (storage, checkpoint) -> lock.grant(new ChunkSweepLock.Scope(storage.getMetadata().getName(),
          checkpoint.getMetadata().getNamespace()), checkpoint.getMetadata().getUid());
    }
  }

  /** The storage's sweep of the Checkpoint's namespace runs: the grant waits until it ends. */
  static final class ChunkCollectionRunning extends Exception {
    ChunkCollectionRunning(String message) {
      super(message);
    }
  }

  private final ClusterCache cluster;
  private final StorageBinding storages;
  private final ChunkSecrets chunkSecrets;
  private final ChunkKeyGate chunkKeys;

  GrantIssuer(ClusterCache cluster, StorageBinding storages, ChunkSecrets chunkSecrets, ChunkKeyGate chunkKeys) {
    this.cluster = cluster;
    this.storages = storages;
    this.chunkSecrets = chunkSecrets;
    this.chunkKeys = chunkKeys;
  }

  /**
   * For taking a checkpoint on {@code node}: the storage's credentials and the keys its archives
   * are encrypted with (one per container of a pod, one for a process), from the current key; for
   * a checkpoint on a storage that deduplicates, its namespace's chunk key.
   *
   * @param containers the containers of a pod checkpoint; empty for a process checkpoint
   * @throws ChunkCollectionRunning while the storage's chunks of the checkpoint's namespace are swept
   */
  Optional<SealedGrant> forCheckpoint(HasMetadata checkpoint, CheckpointStorage storage, String node,
      List<String> containers) throws Refusal, ChunkCollectionRunning {
    List<WorkGrants.GrantedKey> keys = new ArrayList<>();
    Optional<ArchiveKeys> storageKeys = archiveKeys(storage);
    if (storageKeys.isPresent()) {
      for (String container : containers.isEmpty() ? List.of("") : containers) {
        keys.add(WorkGrants.grantedKey(BoundKey.of(storageKeys.get().current(), identity(checkpoint, container))));
      }
    }
    List<WorkGrants.GrantedChunkKey> chunkKeys = new ArrayList<>();
    // One key for all of a pod's containers: they are of one namespace.
    chunkKeyFor(checkpoint, storage).ifPresent(key -> chunkKeys.add(WorkGrants.grantedChunkKey(key)));
    return seal(checkpoint, node, new WorkGrants.Grant(storage.getMetadata().getName(), s3Credentials(storage), null,
        null, keys, chunkKeys));
  }

  /**
   * The chunk key a checkpoint of {@code namespace} names (and, encrypted, seals) its chunks with,
   * when the storage deduplicates: derived from the storage's current key when it encrypts, else
   * from its chunk secret ({@link ChunkSecrets}). The one place a checkpoint is granted a chunk key,
   * and so where the sweep lock's grant side is ({@link #requireChunkKeyGrantable}).
   *
   * @throws ChunkCollectionRunning while the storage's chunks of the checkpoint's namespace are swept
   */
  Optional<ChunkKey> chunkKeyFor(HasMetadata checkpoint, CheckpointStorage storage)
      throws Refusal, ChunkCollectionRunning {
    if (storage.getSpec() == null || !storage.getSpec().deduplicationOrDefault()) {
      return Optional.empty();
    }
    requireChunkKeyGrantable(checkpoint, storage);
    String namespace = checkpoint.getMetadata().getNamespace();
    Optional<ArchiveKeys> storageKeys = archiveKeys(storage);
    if (storageKeys.isPresent()) {
      return Optional.of(ChunkKey.of(storageKeys.get().current(), namespace));
    }
    try {
      return Optional.of(ChunkKey.of(chunkSecrets.current(storage), namespace));
    } catch (StorageUnavailableException e) {
      throw new Refusal("StorageUnavailable", e.getMessage());
    }
  }

  /** The chunk key a deduplicated checkpoint's manifest names: of the storage key it names, or of the chunk secret. */
  private ChunkKey chunkKeyOf(CheckpointStorage storage, String namespace, Manifest.Chunks chunks) throws Refusal {
    if (!Manifest.Encryption.NONE.algorithm.equals(chunks.encryption)) {
      return ChunkKey.of(storageKey(storage, chunks.keyId), namespace);
    }
    Optional<ArchiveKey> secret;
    try {
      secret = chunkSecrets.find(storage, chunks.keyId);
    } catch (StorageUnavailableException e) {
      throw new Refusal("StorageUnavailable", e.getMessage());
    }
    return ChunkKey.of(secret.orElseThrow(() -> new Refusal(KEY_NOT_FOUND, "the checkpoint's chunks are named with"
        + " chunk secret '" + chunks.keyId + "', which Secret " + chunkSecrets.location(storage) + " of CheckpointStorage '"
        + storage.getMetadata().getName() + "' no longer holds: put it back from a backup of that Secret")), namespace);
  }

  /**
   * For restoring on {@code node}: the storage's credentials and the keys the manifests name; for a
   * pod checkpoint the registry's credentials and CA too, for pushing its checkpoint images.
   */
  Optional<SealedGrant> forRestore(HasMetadata restore, CheckpointStorage storage, String node,
      List<RecordedManifest> manifests, boolean pod) throws Refusal {
    List<WorkGrants.GrantedKey> keys = new ArrayList<>();
    for (RecordedManifest recorded : manifests) {
      Manifest.Encryption encryption = recorded.manifest().archive.encryption;
      if (encryption.isEncrypted()) {
        keys.add(WorkGrants.grantedKey(BoundKey.of(storageKey(storage, encryption.keyId), recorded.identity())));
      }
    }
    List<WorkGrants.GrantedChunkKey> chunkKeys = new ArrayList<>();
    for (RecordedManifest recorded : manifests) {
      if (recorded.manifest().isChunked()) {
        chunkKeys.add(WorkGrants.grantedChunkKey(chunkKeyOf(storage, restore.getMetadata().getNamespace(),
            recorded.manifest().chunks)));
      }
    }
    WorkGrants.Credentials registry = null;
    String registryCa = null;
    if (pod) {
      try {
        registry = storages.registryCredentials(storage).orElse(null);
        registryCa = storages.registryCa(storage).orElse(null);
      } catch (StorageUnavailableException e) {
        throw new Refusal("RegistryNotConfigured", e.getMessage());
      }
    }
    return seal(restore, node, new WorkGrants.Grant(storage.getMetadata().getName(), s3Credentials(storage), registry,
        registryCa, keys, chunkKeys));
  }

  /**
   * The sweep lock's grant side: a Checkpoint passes here before its chunk key is put into its
   * grant, and is recorded as a writer of the namespace's chunks until it ends.
   */
  private void requireChunkKeyGrantable(HasMetadata checkpoint, CheckpointStorage storage)
      throws ChunkCollectionRunning {
    if (!chunkKeys.mayGrant(storage, checkpoint)) {
      throw new ChunkCollectionRunning("waiting for CheckpointStorage '" + storage.getMetadata().getName()
          + "' to finish collecting the unreferenced chunks of namespace " + checkpoint.getMetadata().getNamespace()
          + ": no checkpoint of the namespace writes chunks there meanwhile; it goes on by itself");
    }
  }

  /** Whether the work's grant was sealed to another key than the one its node's agent publishes now. */
  boolean sealedToAnotherKey(AgentWorkStatus status) {
    String published = publishedKey(status.node);
    return status.grant != null && published != null && !NodeKey.fingerprint(published).equals(status.grant.nodeKey);
  }

  /**
   * Sealed to the node's key; empty when the grant holds nothing (a filesystem storage that does not
   * encrypt), for which an agent that publishes no key (an older one) can still do the work.
   */
  private Optional<SealedGrant> seal(HasMetadata work, String node, WorkGrants.Grant grant) throws Refusal {
    String key = publishedKey(node);
    if (key == null) {
      if (grant.s3() == null && grant.registry() == null && grant.registryCa() == null && grant.keys().isEmpty()
          && grant.chunkKeys().isEmpty()) {
        return Optional.empty();
      }
      throw new Refusal("NodeKeyMissing", "the agent on node " + node + " publishes no key in its NodeProfile"
          + " (spec.grantKey) to seal this work's storage credentials and archive keys to: it is older than the"
          + " operator; upgrade the agent");
    }
    return Optional.of(WorkGrants.seal(grant, work, node, key));
  }

  private String publishedKey(String node) {
    NodeProfile profile = node == null ? null : cluster.nodeProfile(node);
    return profile == null || profile.getSpec() == null ? null : profile.getSpec().grantKey;
  }

  private WorkGrants.Credentials s3Credentials(CheckpointStorage storage) throws Refusal {
    try {
      return storages.s3Credentials(storage).orElse(null);
    } catch (StorageUnavailableException e) {
      throw new Refusal("StorageUnavailable", e.getMessage());
    }
  }

  private Optional<ArchiveKeys> archiveKeys(CheckpointStorage storage) throws Refusal {
    try {
      return storages.archiveKeys(storage);
    } catch (EncryptionKeyException e) {
      throw new Refusal(EncryptionKeyException.REASON, e.getMessage());
    }
  }

  /** The storage key an archive names; its keys stay needed as long as archives encrypted with them are kept. */
  private ArchiveKey storageKey(CheckpointStorage storage, String keyId) throws Refusal {
    String name = storage.getMetadata().getName();
    Optional<ArchiveKeys> keys = archiveKeys(storage);
    if (keys.isEmpty()) {
      throw new Refusal(KEY_NOT_FOUND, "the archive is encrypted with key '" + keyId + "', but CheckpointStorage '"
          + name + "' has no spec.encryption: set it back, with the Secret that holds that key");
    }
    Optional<ArchiveKey> key = keys.get().find(keyId);
    if (key.isEmpty()) {
      SecretReference secret = storage.getSpec().encryption.keySecretRef;
      throw new Refusal(KEY_NOT_FOUND, "the archive is encrypted with key '" + keyId + "', which Secret "
          + secret.namespace + "/" + secret.name + " of CheckpointStorage '" + name + "' no longer holds (it holds "
          + String.join(", ", new TreeSet<>(keys.get().byId().keySet())) + "): put that key back into the Secret;"
          + " keys stay needed as long as archives encrypted with them are kept");
    }
    return key.get();
  }

  private static ArchiveIdentity identity(HasMetadata checkpoint, String container) {
    return new ArchiveIdentity(checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getUid(), container);
  }
}
