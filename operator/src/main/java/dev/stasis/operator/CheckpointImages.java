package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointImageStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Conditions;
import dev.stasis.api.RegistrySpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreStatus;
import dev.stasis.image.CheckpointImage;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryException;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.operator.schedule.Durations;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The checkpoint images a pod Restore pushed hold the container's memory in the clear, so they do
 * not stay in the registry: they go once the restored pod has run for the storage's
 * spec.registry.imageGracePeriod (default 10m), at once when the Restore fails, and with the
 * Restore or its Checkpoint when either is deleted. The Restore's condition ImagesDeleted says
 * when they went, or why they could not go yet; the registry's own garbage collection frees the
 * layers' bytes.
 */
final class CheckpointImages {
  static final String IMAGES_DELETED = "ImagesDeleted";
  static final Duration RETRY = Duration.ofSeconds(30);
  /** A deleted Restore or Checkpoint waits this long at most for the registry to take its images' deletion. */
  static final Duration GIVE_UP_AFTER = Duration.ofMinutes(10);

  private final KubernetesClient client;
  private final StorageBinding storages;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Clock clock;

  CheckpointImages(KubernetesClient client, StorageBinding storages, StatusWriter statusWriter, EventRecorder events,
      Clock clock) {
    this.client = client;
    this.storages = storages;
    this.statusWriter = statusWriter;
    this.events = events;
    this.clock = clock;
  }

  /** Whether the Restore pushed images that are not known to be gone. */
  static boolean remain(Restore restore) {
    RestoreStatus status = restore.getStatus();
    return status != null && status.checkpointImages != null && !status.checkpointImages.isEmpty()
        && !Conditions.isTrue(status.conditions, IMAGES_DELETED);
  }

  /** A finished Restore: its images go when due. How long until they are due (or to try again), if they remain. */
  Optional<Duration> deleteWhenDue(Restore restore) {
    if (!remain(restore)) {
      return Optional.empty();
    }
    RestoreStatus status = restore.getStatus();
    if (status.phase == RestorePhase.Completed && status.completionTime != null) {
      Duration grace = gracePeriod(restore);
      Duration left = Duration.between(clock.instant(), Instant.parse(status.completionTime).plus(grace));
      if (!left.isNegative() && !left.isZero()) {
        return Optional.of(left);
      }
      return delete(restore, "the restored pod has run for " + grace.toSeconds() + "s, its storage's"
          + " spec.registry.imageGracePeriod") ? Optional.empty() : Optional.of(RETRY);
    }
    return delete(restore, "the restore " + (status.phase == RestorePhase.Failed ? "failed" : "ended"))
        ? Optional.empty() : Optional.of(RETRY);
  }

  /**
   * A Restore being deleted: its images go first. Whether its finalizer may go: once they are gone,
   * or when the registry has refused for {@link #GIVE_UP_AFTER} (an Event says which images remain).
   */
  boolean deletedWith(Restore restore) {
    if (!remain(restore) || delete(restore, "Restore " + restore.getMetadata().getName() + " was deleted")) {
      return true;
    }
    return givenUp(restore.getMetadata().getDeletionTimestamp(), restore, restore.getStatus().checkpointImages);
  }

  /** A Checkpoint being deleted: the images every Restore of it pushed go first, with the same patience. */
  boolean deletedWith(Checkpoint checkpoint) {
    List<Restore> remaining = new ArrayList<>();
    for (Restore restore : client.resources(Restore.class).inNamespace(checkpoint.getMetadata().getNamespace()).list()
        .getItems()) {
      if (remain(restore) && checkpoint.getMetadata().getName().equals(restore.getStatus().checkpoint)
          && !delete(restore, "Checkpoint " + checkpoint.getMetadata().getName() + " was deleted")) {
        remaining.add(restore);
      }
    }
    return remaining.isEmpty() || givenUp(checkpoint.getMetadata().getDeletionTimestamp(), checkpoint,
        remaining.stream().flatMap(r -> r.getStatus().checkpointImages.stream()).toList());
  }

  /**
   * Deletes the Restore's images now and records it in its status; whether they are all gone (a
   * registry that no longer has one counts as gone).
   */
  boolean delete(Restore restore, String why) {
    List<String> left = new ArrayList<>();
    String failure = null;
    try {
      Registry registry = registryOf(restore);
      for (CheckpointImageStatus image : restore.getStatus().checkpointImages) {
        try {
          CheckpointImage.delete(registry, image.image);
        } catch (RegistryException e) {
          left.add(image.image);
          failure = e.getMessage();
        }
      }
    } catch (StorageUnavailableException e) {
      restore.getStatus().checkpointImages.forEach(i -> left.add(i.image));
      failure = e.getMessage();
    }
    boolean gone = left.isEmpty();
    List<CheckpointImageStatus> images = restore.getStatus().checkpointImages;
    String message = gone ? "deleted " + describe(images) + " from the registry: " + why
        : "could not delete " + String.join(", ", left) + " from the registry yet (" + why + "): " + failure;
    var before = Conditions.find(restore.getStatus().conditions, IMAGES_DELETED);
    boolean changed = before == null || !before.getStatus().equals(gone ? "True" : "False");
    statusWriter.update(restore, r -> r.getStatus() != null, r -> Conditions.set(r.getStatus(), IMAGES_DELETED, gone,
        gone ? "Deleted" : "ImageNotDeleted", message, r.getMetadata().getGeneration()))
        .filter(updated -> changed)
        .ifPresent(updated -> {
          if (gone) {
            events.normal(updated, "ImagesDeleted", message);
          } else {
            events.warning(updated, "ImageNotDeleted", message);
          }
        });
    return gone;
  }

  private boolean givenUp(String deletionTimestamp, HasMetadata owner,
      List<CheckpointImageStatus> images) {
    if (deletionTimestamp == null || clock.instant().isBefore(Instant.parse(deletionTimestamp).plus(GIVE_UP_AFTER))) {
      return false;
    }
    events.warning(owner, "ImageNotDeleted", "gave up deleting " + describe(images) + " after "
        + GIVE_UP_AFTER.toMinutes() + " minutes: delete them in the registry yourself; they hold container memory");
    return true;
  }

  private Registry registryOf(Restore restore) throws StorageUnavailableException {
    CheckpointStorage storage = storageOf(restore);
    if (storage == null) {
      throw new StorageUnavailableException("the Checkpoint or the CheckpointStorage whose registry holds the images"
          + " is gone");
    }
    return storages.registry(storage);
  }

  private CheckpointStorage storageOf(Restore restore) {
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(restore.getMetadata().getNamespace())
        .withName(restore.getStatus().checkpoint != null ? restore.getStatus().checkpoint : restore.checkpointName()).get();
    return checkpoint == null || checkpoint.getStatus() == null ? null : storages.find(checkpoint.getStatus().storage);
  }

  private Duration gracePeriod(Restore restore) {
    CheckpointStorage storage = storageOf(restore);
    String text = storage == null || storage.getSpec() == null || storage.getSpec().registry == null
        ? RegistrySpec.DEFAULT_IMAGE_GRACE_PERIOD : storage.getSpec().registry.imageGracePeriodOrDefault();
    return Durations.parse(text);
  }

  private static String describe(List<CheckpointImageStatus> images) {
    return images.size() == 1 ? "checkpoint image " + images.get(0).image
        : images.size() + " checkpoint images (" + String.join(", ", images.stream().map(i -> i.image).toList()) + ")";
  }
}
