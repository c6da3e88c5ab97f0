package dev.stasis.agent.restore;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.profile.NodeFingerprint;
import dev.stasis.agent.work.NodeJob;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.agent.work.WorkDirs;
import dev.stasis.agent.work.WorkProgress;
import dev.stasis.disk.FreeSpace;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointImageStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.Restore;
import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.DecryptingInputStream;
import dev.stasis.archive.ExpectedBytesInputStream;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.Manifest;
import dev.stasis.image.CheckpointImage;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.image.RegistryException;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.WorkGrants;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.api.model.Node;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's part of restoring a pod checkpoint: each container's stored archive becomes a
 * checkpoint OCI image in the storage's registry, streamed from storage into the registry as the
 * image's only layer (verified against the manifest's sha256 before the registry commits it). The
 * operator then creates the Pod. A failure leaves no image behind. Pushes take one of the node's
 * work slots, and transient failures (storage or registry unreachable, the agent restarted) are
 * tried again under spec.backoffLimit: nothing runs before the operator creates the Pod, so a
 * second push can never make two copies.
 */
final class PodRestoreJob extends NodeJob<Restore> {
  private static final Logger log = LoggerFactory.getLogger(PodRestoreJob.class);

  PodRestoreJob(NodeWork work) {
    super(work);
  }

  /** The pod checkpoint a Restore names, or null when it names a process checkpoint (or none). */
  Checkpoint podCheckpoint(Restore restore) {
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(restore.getMetadata().getNamespace())
        .withName(restore.checkpointName()).get();
    return checkpoint != null && checkpoint.getSpec() != null && checkpoint.getSpec().target != null
        && checkpoint.getSpec().target.pod != null ? checkpoint : null;
  }

  /** A push left unfinished by an agent that died: tried again while spec.backoffLimit allows. */
  @Override
  public Optional<Duration> resolveAbandoned(Restore restore) {
    WorkDirs.delete(podWorkDir(restore));
    failOrRetry(restore, new WorkFailure("AgentRestarted", "the agent on node " + config.nodeName()
        + " restarted while it pushed the checkpoint images"));
    return Optional.empty();
  }

  /** Pushes the images of every container; the operator makes the pod from them. */
  @Override
  public void take(Restore restore) {
    var restoring = work.restores.start(restore, config.nodeName(), "pushing checkpoint images");
    if (restoring.isEmpty()) {
      return;
    }
    restore = restoring.get();
    try {
      Checkpoint checkpoint = podCheckpoint(restore);
      if (checkpoint == null || checkpoint.getStatus() == null || checkpoint.getStatus().containers == null) {
        throw new WorkFailure("CheckpointNotFound", "Checkpoint '" + restore.checkpointName() + "' is gone");
      }
      CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
      WorkGrants.Grant grant = storages.grant(restore);
      Registry registry = storages.registry(storage, grant);
      try (ObjectStore store = storages.open(storage, grant)) {
        List<RecordedManifest> manifests = new ArrayList<>();
        for (ContainerCheckpointStatus container : checkpoint.getStatus().containers) {
          manifests.add(manifest(store, checkpoint, container.name));
        }
        var profile = NodeFingerprint.profile(client, config.nodeName());
        NodeProfileSpec.RuntimeInfo runtime = profile == null ? null : profile.runtime;
        requireSpace(manifests, runtime);
        requireBaseImages(restore, manifests, runtime);
        List<CheckpointImageStatus> pushed = new ArrayList<>();
        try (WorkProgress progress = work.progress(restore, work.restores)) {
          progress.step(ProgressStatus.PUSHING, manifests.stream().mapToLong(PodRestoreJob::progressBytes).sum());
          for (RecordedManifest manifest : manifests) {
            Optional<BoundKey> decryptWith = storages.decryptionKey(manifest, grant);
            Optional<ChunkKey> chunkKey = storages.chunkKey(manifest, grant);
            pushed.add(pushImage(registry, store, restore, checkpoint, manifest, decryptWith, chunkKey, progress));
          }
        } catch (WorkFailure failure) {
          deleteImages(restore, registry, pushed);
          throw failure;
        }
        imagesPushed(restore, pushed);
      }
    } catch (WorkFailure failure) {
      failOrRetry(restore, failure);
    } catch (RuntimeException e) {
      log.error("pod restore {} failed unexpectedly", restore.getMetadata().getName(), e);
      fail(restore, new WorkFailure("AgentError", "the agent failed unexpectedly: " + e));
    }
  }

  private void failOrRetry(Restore restore, WorkFailure failure) {
    int backoffLimit = restore.getSpec().backoffLimitOrDefault();
    if (!work.retryLater(work.restores, restore, failure, backoffLimit)) {
      fail(restore, failure.afterAttempts(restore.getStatus().attempts(), backoffLimit));
    }
  }

  /** A container's manifest as the Checkpoint recorded it, with what the image's layer needs. */
  private RecordedManifest manifest(ObjectStore store, Checkpoint checkpoint, String container) throws WorkFailure {
    RecordedManifest recorded = storages.manifest(store, checkpoint, container);
    Manifest manifest = recorded.manifest();
    String at = store.uri(RecordedManifest.layout(checkpoint).containerManifestKey(container));
    if (manifest.isChunked()) {
      if (manifest.archive.tarSha256 == null) {
        throw new WorkFailure("ManifestInvalid", "the manifest at " + at + " of a deduplicated pod checkpoint lacks"
            + " archive.tarSha256, which the tar put together from its chunks is checked against; take a new checkpoint");
      }
      return recorded;
    }
    if (manifest.archive.encryption.isEncrypted() && manifest.archive.encryption.plaintextSha256 == null) {
      throw new WorkFailure("ManifestInvalid", "the manifest at " + at
          + " lacks archive.encryption.plaintextSha256, which the image's layer needs; take a new checkpoint");
    }
    if (manifest.archive.tarSha256 == null && manifest.archive.codec != ArchiveCodec.NONE) {
      throw new WorkFailure("ManifestInvalid", "the manifest at " + at
          + " lacks archive.tarSha256, which the image's layer needs; take a new checkpoint");
    }
    return recorded;
  }

  /**
   * The runtime keeps a pulled image compressed and unpacked: without that much room the pod could
   * never start, and would fail much later with a less helpful message.
   */
  private void requireSpace(List<RecordedManifest> manifests, NodeProfileSpec.RuntimeInfo runtime) throws WorkFailure {
    long needed = manifests.stream().mapToLong(m -> layerBytes(m) + m.archive().sizeBytes()).sum();
    Path dir = config.runtime().storageDir(runtime == null ? null : runtime.name);
    long free;
    try {
      free = FreeSpace.usableBytes(config.onHost(dir));
    } catch (IOException e) {
      throw new WorkFailure("InsufficientSpace", "cannot tell the free space in " + dir + ": " + e.getMessage());
    }
    if (free < needed) {
      throw new WorkFailure("InsufficientSpace", "node " + config.nodeName() + " has " + free + " bytes free in " + dir
          + " (where the container runtime keeps images) but the checkpoint needs " + needed
          + " (its archives compressed and unpacked): free space there, or restore on another node (spec.placement.nodeName)");
    }
  }

  /** The images the checkpoints were based on, which the runtime needs again: before anything is pushed. */
  private void requireBaseImages(Restore restore, List<RecordedManifest> manifests, NodeProfileSpec.RuntimeInfo runtime)
      throws WorkFailure {
    Node node = client.nodes().withName(config.nodeName()).get();
    for (RecordedManifest manifest : manifests) {
      BaseImages.check(manifest.manifest(), runtime, node)
          .ifPresent(warning -> events.warning(restore, "BaseImageUnchecked", warning));
    }
  }

  /**
   * Pushes the container's image into the namespace's repository, tagged for this Restore: its layer
   * the stored archive, or the tar a deduplicated checkpoint puts together ({@code chunkKey} given).
   * Only authenticated bytes reach the registry, and it refuses a blob whose digest differs from the
   * manifest's.
   */
  private CheckpointImageStatus pushImage(Registry registry, ObjectStore store, Restore restore, Checkpoint checkpoint,
      RecordedManifest recorded, Optional<BoundKey> decryptWith, Optional<ChunkKey> chunkKey, WorkProgress progress)
      throws WorkFailure {
    Manifest manifest = recorded.manifest();
    String container = manifest.source.containerName;
    String restoreUid = restore.getMetadata().getUid();
    String arch = manifest.nodeProfile != null && manifest.nodeProfile.get("arch") instanceof String a ? a
        : System.getProperty("os.arch");
    try {
      RegistryClient client = RegistryClient.open(registry, registry.repository(checkpoint.getMetadata().getNamespace()));
      ImagePush push = (layer, content) -> CheckpointImage.push(client, CheckpointImage.tag(container, restoreUid),
          CheckpointImage.annotations(manifest, restoreUid), arch, layer, content);
      String digest = chunkKey.isPresent()
          ? pushRebuilt(push, store, restore, recorded, decryptWith.orElse(null), chunkKey.get(), progress)
          : pushStored(push, store, recorded, decryptWith, progress);
      return new CheckpointImageStatus(container, client.reference(digest));
    } catch (RegistryException e) {
      throw new WorkFailure(e.reason(), e.getMessage());
    } catch (RegistryClient.BlobMismatchException e) {
      throw new WorkFailure("ArchiveCorrupted", "the archive of container " + container + " does not match its"
          + " manifest: " + e.getMessage() + "; nothing was pushed; restore another checkpoint");
    } catch (ChunkedImagesDownload.ChunkMissingException e) {
      throw new WorkFailure("ArchiveMissing", e.getMessage() + "; no image was made; restore another checkpoint");
    } catch (ObjectNotFoundException e) {
      throw new WorkFailure("ArchiveMissing", "the archive of container " + container + " is missing ("
          + e.getMessage() + ") although its manifest exists; restore another checkpoint");
    } catch (ArchiveAuthenticationException e) {
      throw new WorkFailure("ArchiveNotAuthentic", "the stored archive of container " + container + ": "
          + e.getMessage() + "; no image was made of it; restore another checkpoint");
    } catch (ArchiveIntegrityException e) {
      throw new WorkFailure("ArchiveCorrupted", "the stored archive of container " + container + " at "
          + store.uri(recorded.archiveKey()) + ": " + e.getMessage() + "; no image was made of it; restore another"
          + " checkpoint");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WorkFailure("DownloadFailed", "putting the archive of container " + container + " together was"
          + " interrupted");
    } catch (IOException e) {
      throw new WorkFailure("DownloadFailed", "reading " + store.uri(recorded.archiveKey()) + " failed: " + e.getMessage());
    }
  }

  /** Pushes the image with this layer, its bytes read from {@code content}; the image's digest. */
  private interface ImagePush {
    String push(CheckpointImage.Layer layer, InputStream content)
        throws RegistryException, RegistryClient.BlobMismatchException, IOException;
  }

  /** The stored archive as the layer; an encrypted one decrypted on the way, since the runtime reads the layer as it is. */
  private static String pushStored(ImagePush push, ObjectStore store, RecordedManifest recorded,
      Optional<BoundKey> decryptWith, WorkProgress progress)
      throws RegistryException, RegistryClient.BlobMismatchException, IOException {
    Manifest manifest = recorded.manifest();
    Manifest.Encryption encryption = manifest.archive.encryption;
    String layerSha256 = decryptWith.isPresent() ? encryption.plaintextSha256 : recorded.archive().sha256();
    long layerBytes = decryptWith.isPresent() ? encryption.plaintextBytes : recorded.archive().storedBytes();
    var layer = new CheckpointImage.Layer(layerSha256, layerBytes,
        manifest.archive.tarSha256 != null ? manifest.archive.tarSha256 : layerSha256,
        manifest.archive.codec == ArchiveCodec.ZSTD);
    try (InputStream stored = progress.counting(store.open(recorded.archiveKey()))) {
      InputStream checked = new ExpectedBytesInputStream(stored, recorded.archive().sha256(), recorded.archive().storedBytes());
      return push.push(layer, decryptWith.isPresent() ? new DecryptingInputStream(checked, decryptWith.get()) : checked);
    }
  }

  /**
   * The bytes a container's image takes to push: the stored archive, streamed into the push; or for
   * a deduplicated checkpoint its images' bytes, written into the tar put together, and then the tar
   * (about its logical size: the skeleton and the images).
   */
  private static long progressBytes(RecordedManifest recorded) {
    return recorded.manifest().isChunked() ? recorded.manifest().chunks.imagesBytes + layerBytes(recorded)
        : layerBytes(recorded);
  }

  /**
   * The bytes of a container's image layer: the stored archive, or for a deduplicated checkpoint
   * the tar put together (about its logical size: the skeleton and the images).
   */
  private static long layerBytes(RecordedManifest recorded) {
    return recorded.manifest().isChunked() ? recorded.archive().sizeBytes() : recorded.archive().storedBytes();
  }

  /**
   * A deduplicated pod checkpoint (docs/dedup.md, "Pod checkpoints"): the kubelet's tar is put
   * together in the agent's work folder and checked ({@link RebuiltKubeletArchive}) before a byte of
   * it is pushed, uncompressed, as the layer (digest = diff id = the tar's recorded sha256); then its
   * folder is deleted. A tar that cannot be put together or is not the recorded one is never pushed.
   */
  private String pushRebuilt(ImagePush push, ObjectStore store, Restore restore, RecordedManifest recorded,
      BoundKey decryptWith, ChunkKey chunkKey, WorkProgress progress)
      throws WorkFailure, RegistryException, RegistryClient.BlobMismatchException, IOException, InterruptedException {
    Path dir = podWorkDir(restore);
    Files.createDirectories(dir);
    long needed = recorded.archive().sizeBytes();
    long free = FreeSpace.usableBytes(dir);
    if (free < needed) {
      throw new WorkFailure("WorkDirFull", "the work folder " + dir + " on node " + config.nodeName() + " has " + free
          + " bytes free, the checkpoint's tar needs " + needed + " to be put together there: nothing was pushed. Free"
          + " space there, give the agent a larger --work-dir, or restore on another node (spec.placement)");
    }
    Path tarFile = dir.resolve(recorded.identity().container() + ".tar");
    try {
      // Downloading while the chunks come in (the slow part from a remote storage), then Pushing the tar:
      // one count of bytes through both, so the PROGRESS column only moves forward.
      long before = progress.bytesDone();
      progress.step(ProgressStatus.DOWNLOADING, progress.bytesExpected());
      RebuiltKubeletArchive.Rebuilt rebuilt = RebuiltKubeletArchive.write(store, recorded, decryptWith, chunkKey,
          tarFile, written -> progress.done(before + written));
      progress.step(ProgressStatus.PUSHING, progress.bytesExpected());
      String tarSha256 = recorded.manifest().archive.tarSha256;
      try (InputStream tar = progress.counting(Files.newInputStream(tarFile))) {
        return push.push(new CheckpointImage.Layer(tarSha256, rebuilt.tarBytes(), tarSha256, false), tar);
      }
    } finally {
      WorkDirs.delete(dir);
    }
  }

  /** Where a Restore's deduplicated pod archives are put together, one at a time. */
  private Path podWorkDir(Restore restore) {
    return config.workDir().resolve("pod-restores").resolve(restore.getMetadata().getUid());
  }

  private void deleteImages(Restore restore, Registry registry, List<CheckpointImageStatus> images) {
    for (CheckpointImageStatus image : images) {
      try {
        CheckpointImage.delete(registry, image.image);
      } catch (RegistryException e) {
        events.warning(restore, "ImageNotDeleted", "could not delete the checkpoint image " + image.image
            + " after the restore failed: " + e.getMessage());
      }
    }
  }

  private void imagesPushed(Restore restore, List<CheckpointImageStatus> images) {
    work.restores.imagesPushed(restore, images, "pushed " + images.size() + " checkpoint image"
        + (images.size() == 1 ? "" : "s") + "; the operator creates the pod");
  }

  private void fail(Restore restore, WorkFailure failure) {
    log.warn("pod restore {}/{} failed: {} {}", restore.getMetadata().getNamespace(), restore.getMetadata().getName(),
        failure.reason(), failure.getMessage());
    work.restores.fail(restore, failure.reason(), failure.getMessage(), null);
  }
}
