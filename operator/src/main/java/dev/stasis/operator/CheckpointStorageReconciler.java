package dev.stasis.operator;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.Conditions;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.kube.EncryptionKeyException;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.StatusWriter;
import dev.stasis.kube.StorageBinding;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.retention.ChunkKeys;
import dev.stasis.operator.retention.ChunkSweepLock;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.operator.schedule.Durations;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks for real, and again every minute, that a storage can be written, read and deleted; and
 * every {@link #GARBAGE_COLLECTION_INTERVAL} removes the objects whose Checkpoint no longer exists
 * and the chunks no manifest refers to (each namespace's under its {@link ChunkSweepLock}), and
 * records what the storage holds (status.usage).
 */
@ControllerConfiguration(name = "checkpointstorage", generationAwareEventProcessing = false)
public class CheckpointStorageReconciler implements Reconciler<CheckpointStorage> {
  private static final Logger log = LoggerFactory.getLogger(CheckpointStorageReconciler.class);
  static final Duration RECHECK = Duration.ofSeconds(60);
  /** Sooner while it is down: Checkpoints and Restores waiting to retry (spec.backoffLimit) go on once it is back. */
  static final Duration RECHECK_UNAVAILABLE = Duration.ofSeconds(10);
  static final Duration GARBAGE_COLLECTION_INTERVAL = Duration.ofMinutes(10);
  static final Duration DEFAULT_GRACE_PERIOD = Duration.ofHours(1);
  static final String GARBAGE_COLLECTION = "GarbageCollection";
  static final String CHUNK_INDEX_INVALID = "ChunkIndexInvalid";

  private final KubernetesClient client;
  private final StorageBinding storages;
  private final ChunkSecrets chunkSecrets;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Duration garbageCollectionInterval;
  private final Clock clock;
  private final ChunkSweepLock chunkLock;
  private volatile String clusterId;

  /** @param chunkLock shared with the {@link CheckpointReconciler}, which grants chunk keys */
  public CheckpointStorageReconciler(KubernetesClient client, EventRecorder events, ChunkSweepLock chunkLock) {
    this(client, events, chunkLock, GARBAGE_COLLECTION_INTERVAL, Clock.systemUTC());
  }

  CheckpointStorageReconciler(KubernetesClient client, EventRecorder events, ChunkSweepLock chunkLock,
      Duration garbageCollectionInterval, Clock clock) {
    this.client = client;
    this.chunkLock = chunkLock;
    this.storages = new StorageBinding(client);
    this.chunkSecrets = new ChunkSecrets(client);
    this.statusWriter = new StatusWriter(client);
    this.events = events;
    this.garbageCollectionInterval = garbageCollectionInterval;
    this.clock = clock;
  }

  @Override
  public UpdateControl<CheckpointStorage> reconcile(CheckpointStorage storage, Context<CheckpointStorage> context) {
    CheckpointStorageStatus status = new CheckpointStorageStatus();
    status.observedGeneration = storage.getMetadata().getGeneration();
    if (storage.getStatus() != null) {
      status.conditions.addAll(storage.getStatus().conditions);
      status.garbageCollectedObjects = storage.getStatus().garbageCollectedObjects;
      status.lastGarbageCollectionTime = storage.getStatus().lastGarbageCollectionTime;
      status.usage = storage.getStatus().usage;
    }
    status.location = StorageBinding.location(storage);
    try (ObjectStore store = storages.open(storage)) {
      var keys = storages.archiveKeys(storage);
      store.check();
      markUsedByThisCluster(store);
      status.phase = CheckpointStorageStatus.AVAILABLE;
      status.message = "checked: objects can be written, read and deleted"
          + keys.map(k -> "; archives are encrypted with key '" + k.currentKeyId() + "'").orElse("");
      Conditions.set(status, Conditions.AVAILABLE, true, "Checked", status.message, status.observedGeneration);
      if (garbageCollectionDue(storage, status)) {
        collectGarbage(storage, store, status);
      }
    } catch (StorageUnavailableException e) {
      status.phase = CheckpointStorageStatus.UNAVAILABLE;
      status.reason = e instanceof EncryptionKeyException ? EncryptionKeyException.REASON : "StorageUnavailable";
      status.message = e.getMessage();
      Conditions.set(status, Conditions.AVAILABLE, false, status.reason, status.message, status.observedGeneration);
    }
    String before = storage.getStatus() == null ? null : storage.getStatus().phase;
    String reasonBefore = storage.getStatus() == null ? null : storage.getStatus().reason;
    statusWriter.replace(storage, status);
    StasisMetrics.storageChecked(storage.getMetadata().getName(), CheckpointStorageStatus.AVAILABLE.equals(status.phase));
    if (!Objects.equals(before, status.phase) || !Objects.equals(reasonBefore, status.reason)) {
      if (CheckpointStorageStatus.AVAILABLE.equals(status.phase)) {
        events.normal(storage, "Available", status.location + " " + status.message);
      } else {
        events.warning(storage, status.reason, status.message);
      }
    }
    return UpdateControl.<CheckpointStorage>noUpdate()
        .rescheduleAfter(CheckpointStorageStatus.AVAILABLE.equals(status.phase) ? RECHECK : RECHECK_UNAVAILABLE);
  }

  /**
   * Due by the time of the last collection in the status, so that restarts do not collect more
   * often; or at once while Checkpoints wait for a sweep of this storage that was held off long.
   */
  private boolean garbageCollectionDue(CheckpointStorage storage, CheckpointStorageStatus status) {
    CheckpointStorageSpec.GarbageCollection settings = storage.getSpec().garbageCollection;
    if (settings != null && Boolean.FALSE.equals(settings.enabled)) {
      chunkLock.stopDraining(storage.getMetadata().getName());
      return false;
    }
    return status.lastGarbageCollectionTime == null
        || !Instant.parse(status.lastGarbageCollectionTime).plus(garbageCollectionInterval).isAfter(clock.instant())
        || chunkLock.isDraining(storage.getMetadata().getName());
  }

  private void collectGarbage(CheckpointStorage storage, ObjectStore store, CheckpointStorageStatus status) {
    CheckpointStorageSpec.GarbageCollection settings = storage.getSpec().garbageCollection;
    Duration gracePeriod = DEFAULT_GRACE_PERIOD;
    if (settings != null && settings.gracePeriod != null) {
      try {
        gracePeriod = Durations.parse(settings.gracePeriod);
      } catch (IllegalArgumentException e) {
        events.warning(storage, "InvalidGracePeriod", "spec.garbageCollection.gracePeriod: " + e.getMessage()
            + "; nothing is garbage collected until it is fixed");
        return;
      }
    }
    Instant now = clock.instant();
    try {
      Set<String> uids = checkpointUids();
      String storageName = storage.getMetadata().getName();
      var collected = StorageGarbageCollector.collect(store, clusterId(), layout -> uids.contains(layout.checkpointUid())
          || existsNow(layout), namespace -> chunkLock.tryHold(new ChunkSweepLock.Scope(storageName, namespace),
              () -> inFlight(namespace)), chunkKeys(storage), gracePeriod,
          storage.getSpec().maxUnusedPercentOrDefault(), now);
      status.lastGarbageCollectionTime = now.truncatedTo(ChronoUnit.SECONDS).toString();
      if (!collected.otherClusters().isEmpty()) {
        pause(storage, status, collected.otherClusters());
        return;
      }
      status.usage = usage(collected.usage(), status.observedGeneration, status.lastGarbageCollectionTime);
      if (!collected.chunks().waited().isEmpty()) {
        log.info("storage {}: chunks of {} wait for the Checkpoints in flight there, until the next collection",
            storageName, collected.chunks().waited());
      }
      if (!collected.chunks().stopped().isEmpty()) {
        String message = "the chunks of " + String.join("; ", collected.chunks().stopped().entrySet().stream()
            .map(e -> "namespace " + e.getKey() + " are all kept: " + e.getValue()).toList())
            + ". Delete that checkpoint (or put back what was altered) for its namespace's chunks to be collected again";
        var before = Conditions.find(status.conditions, GARBAGE_COLLECTION);
        boolean news = before == null || !CHUNK_INDEX_INVALID.equals(before.getReason())
            || !message.equals(before.getMessage());
        Conditions.set(status, GARBAGE_COLLECTION, false, CHUNK_INDEX_INVALID, message, status.observedGeneration);
        if (news) {
          events.warning(storage, CHUNK_INDEX_INVALID, message);
        }
      } else {
        Conditions.set(status, GARBAGE_COLLECTION, true, "Collected", "objects of deleted checkpoints and chunks no"
            + " manifest refers to are removed after " + gracePeriod.toMinutes() + " minutes",
            status.observedGeneration);
      }
      status.garbageCollectedObjects = (status.garbageCollectedObjects == null ? 0 : status.garbageCollectedObjects)
          + collected.objects() + collected.chunks().deleted() + collected.chunks().packs().deleted()
          + collected.chunks().packs().repacked();
      if (!collected.isEmpty()) {
        String message = "removed " + describe(collected);
        log.info("storage {}: {}", storage.getMetadata().getName(), message);
        events.normal(storage, "GarbageCollected", message);
      }
    } catch (IOException e) {
      log.warn("storage {}: garbage collection failed: {}", storage.getMetadata().getName(), e.getMessage());
      events.warning(storage, "GarbageCollectionFailed", "could not remove objects of deleted checkpoints: "
          + e.getMessage() + "; trying again at the next check");
    }
  }

  /** "2 objects (2048 bytes) and 1 unfinished uploads of 1 checkpoints that no longer exist: ns/c-uid/". */
  private static String describe(StorageGarbageCollector.Collected collected) {
    List<String> parts = new ArrayList<>();
    if (!collected.prefixes().isEmpty()) {
      parts.add(collected.objects() + " objects (" + collected.bytes() + " bytes)"
          + (collected.unfinishedUploads() > 0 ? " and " + collected.unfinishedUploads() + " unfinished uploads" : "")
          + " of " + collected.prefixes().size() + " checkpoints that no longer exist: "
          + String.join(", ", collected.prefixes()));
    }
    if (collected.probes() > 0) {
      parts.add(collected.probes() + " probe objects of storage checks that failed halfway");
    }
    var packs = collected.chunks().packs();
    if (packs.deleted() > 0 || packs.repacked() > 0) {
      parts.add(packs.deleted() + " packs that no manifest refers to" + (packs.repacked() > 0 ? ", " + packs.repacked()
          + " mostly unreferenced packs repacked into " + packs.written() : "") + " (" + packs.freedBytes()
          + " bytes freed)");
    }
    if (collected.chunks().deleted() > 0) {
      parts.add(collected.chunks().deleted() + " chunks (" + collected.chunks().deletedBytes()
          + " bytes) that no manifest refers to");
    }
    if (collected.chunks().abandonedUploads() > 0) {
      parts.add(collected.chunks().abandonedUploads() + " unfinished chunk uploads untouched for longer than the"
          + " grace period");
    }
    return String.join("; ", parts);
  }

  /**
   * Another cluster's Stasis marked the storage: its checkpoints are unknown here and would look
   * deleted, so nothing is collected (condition GarbageCollection False, an Event when it begins).
   */
  private void pause(CheckpointStorage storage, CheckpointStorageStatus status, List<String> otherClusters) {
    String markers = String.join(", ", otherClusters.stream()
        .map(id -> StorageBinding.location(storage) + "/" + StorageGarbageCollector.CLUSTER_MARKERS + id).toList());
    String message = "garbage collection is paused: the Stasis of another cluster uses this storage too (" + markers
        + "), and its archives would look like those of deleted checkpoints. Give each cluster its own bucket or"
        + " spec.s3.prefix; if that cluster no longer uses the storage, delete its marker object";
    boolean begins = !Conditions.isFalse(status.conditions, GARBAGE_COLLECTION);
    Conditions.set(status, GARBAGE_COLLECTION, false, "StorageShared", message, status.observedGeneration);
    if (begins) {
      events.warning(storage, "StorageShared", message);
    }
  }

  private void markUsedByThisCluster(ObjectStore store) throws StorageUnavailableException {
    try {
      if (!store.exists(StorageGarbageCollector.CLUSTER_MARKERS + clusterId())) {
        StorageGarbageCollector.markUsedBy(store, clusterId());
      }
    } catch (IOException e) {
      throw new StorageUnavailableException("cannot mark the storage as used by this cluster: " + e.getMessage(), e);
    }
  }

  /**
   * The storage's chunk keys by id, as {@link GrantIssuer} grants them: derived from an encryption
   * key (chunks sealed) or from the chunk secret (chunks only named).
   */
  private ChunkKeys chunkKeys(CheckpointStorage storage) {
    return (namespace, keyId) -> {
      try {
        Optional<ArchiveKey> encryption = storages.archiveKeys(storage).flatMap(keys -> keys.find(keyId));
        if (encryption.isPresent()) {
          return Optional.of(new ChunkKeys.NamespaceKey(ChunkKey.of(encryption.get(), namespace), true));
        }
        return chunkSecrets.find(storage, keyId).map(secret -> new ChunkKeys.NamespaceKey(ChunkKey.of(secret,
            namespace), false));
      } catch (StorageUnavailableException e) {
        throw new IOException(e.getMessage(), e);
      }
    };
  }

  /** The UID of the kube-system namespace, which Kubernetes tools use to tell clusters apart. */
  private String clusterId() {
    if (clusterId == null) {
      var kubeSystem = client.namespaces().withName("kube-system").get();
      clusterId = kubeSystem != null ? kubeSystem.getMetadata().getUid() : "unknown";
    }
    return clusterId;
  }

  /** Asked of checkpoints the listing at the start did not know: created since, or gone. */
  private boolean existsNow(ArchiveLayout layout) {
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(layout.namespace())
        .withName(layout.checkpointName()).get();
    return checkpoint != null && layout.checkpointUid().equals(checkpoint.getMetadata().getUid());
  }

  private static CheckpointStorageStatus.Usage usage(StorageGarbageCollector.Usage found, Long generation,
      String computedAt) {
    var usage = new CheckpointStorageStatus.Usage();
    usage.storedBytes = found.storedBytes();
    usage.referencedBytes = found.referencedBytes();
    usage.deduplicationRatio = found.storedBytes() == 0 ? null
        : BigDecimal.valueOf(found.referencedBytes()).divide(BigDecimal.valueOf(found.storedBytes()), 2,
            RoundingMode.HALF_UP).toPlainString();
    usage.manifests = found.manifests();
    usage.chunks = found.chunks();
    usage.observedGeneration = generation;
    usage.computedAt = computedAt;
    return usage;
  }

  /** The namespace's Checkpoints not yet Completed or Failed, read from the API server itself (not a cache). */
  private List<ChunkSweepLock.InFlight> inFlight(String namespace) {
    return client.resources(Checkpoint.class).inNamespace(namespace).list().getItems().stream()
        .filter(c -> c.getStatus() == null || !c.getStatus().phaseOrPending().isTerminal())
        .map(c -> new ChunkSweepLock.InFlight(c.getMetadata().getUid(), c.getMetadata().getName(),
            c.getStatus() == null ? null : c.getStatus().storage))
        .toList();
  }

  private Set<String> checkpointUids() {
    return client.resources(Checkpoint.class).inAnyNamespace().list().getItems().stream()
        .map(c -> c.getMetadata().getUid()).collect(Collectors.toSet());
  }
}
