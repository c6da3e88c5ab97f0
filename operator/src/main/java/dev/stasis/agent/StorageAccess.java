package dev.stasis.agent;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.kube.StorageBinding;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;

/** The storage a job names, with failures already in the words the job's status needs. */
class StorageAccess {
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

  ObjectStore open(CheckpointStorage storage) throws WorkFailure {
    try {
      return binding.open(storage);
    } catch (StorageUnavailableException e) {
      // Opening only reads the storage's settings: what fails here is a setting, not an outage.
      throw new WorkFailure("StorageMisconfigured", e.getMessage());
    }
  }
}
