package dev.stasis.operator;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.Conditions;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.time.Duration;
import java.util.Objects;

/** Checks for real, and again every minute, that a storage can be written, read and deleted. */
@ControllerConfiguration(name = "checkpointstorage", generationAwareEventProcessing = false)
public class CheckpointStorageReconciler implements Reconciler<CheckpointStorage> {
  static final Duration RECHECK = Duration.ofSeconds(60);

  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;

  public CheckpointStorageReconciler(KubernetesClient client, EventRecorder events) {
    this.storages = new StorageBinding(client);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
  }

  @Override
  public UpdateControl<CheckpointStorage> reconcile(CheckpointStorage storage, Context<CheckpointStorage> context) {
    CheckpointStorageStatus status = new CheckpointStorageStatus();
    status.observedGeneration = storage.getMetadata().getGeneration();
    if (storage.getStatus() != null) {
      status.conditions.addAll(storage.getStatus().conditions);
    }
    status.location = StorageBinding.location(storage);
    try (ObjectStore store = storages.open(storage)) {
      store.check();
      status.phase = CheckpointStorageStatus.AVAILABLE;
      status.message = "checked: objects can be written, read and deleted";
      Conditions.set(status, Conditions.AVAILABLE, true, "Checked", status.message, status.observedGeneration);
    } catch (StorageUnavailableException e) {
      status.phase = CheckpointStorageStatus.UNAVAILABLE;
      status.reason = "StorageUnavailable";
      status.message = e.getMessage();
      Conditions.set(status, Conditions.AVAILABLE, false, status.reason, status.message, status.observedGeneration);
    }
    String before = storage.getStatus() == null ? null : storage.getStatus().phase;
    statusWriter.replace(storage, status);
    StasisMetrics.storageChecked(storage.getMetadata().getName(), CheckpointStorageStatus.AVAILABLE.equals(status.phase));
    if (!Objects.equals(before, status.phase)) {
      if (CheckpointStorageStatus.AVAILABLE.equals(status.phase)) {
        events.normal(storage, "Available", status.location + " " + status.message);
      } else {
        events.warning(storage, "StorageUnavailable", status.message);
      }
    }
    return UpdateControl.<CheckpointStorage>noUpdate().rescheduleAfter(RECHECK);
  }
}
