package dev.stasis.agent;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveKeys;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.Manifest;
import dev.stasis.kube.EncryptionKeyException;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Optional;
import java.util.TreeSet;

/** The storage a job names, with failures already in the words the job's status needs. */
class StorageAccess {
  static final String KEY_NOT_FOUND = "EncryptionKeyNotFound";

  private final StorageBinding binding;

  StorageAccess(KubernetesClient client) {
    this.binding = new StorageBinding(client);
  }

  CheckpointStorage find(String name) throws WorkFailure {
    CheckpointStorage storage = name == null ? null : binding.find(name);
    if (storage == null) {
      throw new WorkFailure("StorageNotFound", "CheckpointStorage '" + name + "' no longer exists");
    }
    return storage;
  }

  /**
   * The key the archive {@code identity} is encrypted with when this storage stores it: the current
   * storage key, bound to that archive. Empty when the storage does not encrypt.
   */
  Optional<BoundKey> encryptionKey(CheckpointStorage storage, ArchiveIdentity identity) throws WorkFailure {
    return keys(storage).map(keys -> BoundKey.of(keys.current(), identity));
  }

  /**
   * The key the manifest says its archive was encrypted with, from the storage's key Secret, bound
   * to the archive; empty for an archive that is not encrypted. The manifest is the one the
   * Checkpoint recorded, so "not encrypted" is believed: such an archive was stored before the
   * storage encrypted.
   */
  Optional<BoundKey> decryptionKey(CheckpointStorage storage, RecordedManifest recorded) throws WorkFailure {
    Manifest.Encryption encryption = recorded.manifest().archive.encryption;
    if (!encryption.isEncrypted()) {
      return Optional.empty();
    }
    String name = storage.getMetadata().getName();
    Optional<ArchiveKeys> keys = keys(storage);
    if (keys.isEmpty()) {
      throw new WorkFailure(KEY_NOT_FOUND, "the archive is encrypted with key '" + encryption.keyId
          + "', but CheckpointStorage '" + name + "' has no spec.encryption: set it back, with the Secret that holds"
          + " that key");
    }
    Optional<ArchiveKey> key = keys.get().find(encryption.keyId);
    if (key.isEmpty()) {
      SecretReference secret = storage.getSpec().encryption.keySecretRef;
      throw new WorkFailure(KEY_NOT_FOUND, "the archive is encrypted with key '" + encryption.keyId + "', which Secret "
          + secret.namespace + "/" + secret.name + " of CheckpointStorage '" + name + "' no longer holds (it holds "
          + String.join(", ", new TreeSet<>(keys.get().byId().keySet())) + "): put that key back into the Secret;"
          + " keys stay needed as long as archives encrypted with them are kept");
    }
    return Optional.of(BoundKey.of(key.get(), recorded.identity()));
  }

  private Optional<ArchiveKeys> keys(CheckpointStorage storage) throws WorkFailure {
    try {
      return binding.archiveKeys(storage);
    } catch (EncryptionKeyException e) {
      throw new WorkFailure(EncryptionKeyException.REASON, e.getMessage());
    }
  }

  /**
   * The manifest of {@code checkpoint} (of its {@code container}; null for a process checkpoint),
   * checked against what the Checkpoint's status recorded.
   */
  RecordedManifest manifest(ObjectStore store, Checkpoint checkpoint, String container) throws WorkFailure {
    try {
      return RecordedManifest.read(store, checkpoint, container);
    } catch (StoredCheckpointException e) {
      throw new WorkFailure(e.reason(), e.getMessage());
    }
  }

  ObjectStore open(CheckpointStorage storage) throws WorkFailure {
    try {
      return binding.open(storage);
    } catch (StorageUnavailableException e) {
      // Opening only reads the storage's settings: what fails here is a setting, not an outage.
      throw new WorkFailure("StorageMisconfigured", e.getMessage());
    }
  }
}
