package dev.stasis.agent;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveKeys;
import dev.stasis.archive.Manifest;
import dev.stasis.kube.EncryptionKeyException;
import dev.stasis.kube.StorageBinding;
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

  /** The key new archives of this storage are encrypted with; empty when the storage does not encrypt. */
  Optional<ArchiveKey> encryptionKey(CheckpointStorage storage) throws WorkFailure {
    return keys(storage).map(ArchiveKeys::current);
  }

  /**
   * The key the manifest says its archive was encrypted with, from the storage's key Secret; empty
   * for an archive that is not encrypted.
   *
   * <p>On a storage that encrypts, a manifest saying "not encrypted" is believed only if its sha256
   * is the one the Checkpoint's status recorded when the archive was stored: the API server keeps
   * that out of reach of whoever can write the bucket, who could otherwise swap in a plain archive
   * of memory images of their choosing. Archives stored before encryption was turned on pass.
   *
   * @param recorded the archive as the Checkpoint's status records it
   */
  Optional<ArchiveKey> decryptionKey(CheckpointStorage storage, Manifest manifest, ArchiveStatus recorded)
      throws WorkFailure {
    Manifest.Encryption encryption = manifest.archive.encryption;
    String name = storage.getMetadata().getName();
    Optional<ArchiveKeys> keys = keys(storage);
    if (!encryption.isEncrypted()) {
      if (keys.isPresent() && (recorded == null || !manifest.archive.sha256.equalsIgnoreCase(recorded.sha256))) {
        throw new WorkFailure("ArchiveNotEncrypted", "CheckpointStorage '" + name + "' encrypts archives, but the"
            + " manifest says this archive is not encrypted and its sha256 " + manifest.archive.sha256 + " is not the one"
            + " the Checkpoint recorded (" + (recorded == null ? "none" : recorded.sha256) + "): someone who can write"
            + " the storage replaced it; nothing was restored");
      }
      return Optional.empty();
    }
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
    return key;
  }

  private Optional<ArchiveKeys> keys(CheckpointStorage storage) throws WorkFailure {
    try {
      return binding.archiveKeys(storage);
    } catch (EncryptionKeyException e) {
      throw new WorkFailure(EncryptionKeyException.REASON, e.getMessage());
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
